#!/usr/bin/env python3
"""elf_stripped.py BINARY: exits 0 when the ELF file has no symbol table and no debug
sections (what `strip` removes; `.debug_gdb_scripts`, loaded data, stays), 1 otherwise."""
import struct
import sys

data = open(sys.argv[1], "rb").read()
if data[:4] != b"\x7fELF" or data[4] != 2:
    sys.exit(f"{sys.argv[1]}: not a 64-bit ELF file")
shoff = struct.unpack_from("<Q", data, 0x28)[0]
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
strtab = sections[shstrndx][4]
names = [data[strtab + s[0]:data.index(b"\0", strtab + s[0])].decode() for s in sections]
left = [n for n in names if n == ".symtab" or (n.startswith(".debug") and n != ".debug_gdb_scripts")]
if left:
    sys.exit(f"{sys.argv[1]} is not stripped: {', '.join(left)}")
print(f"{sys.argv[1]}: stripped")
