//! Pure parsers for Salesforce value text (numbers exact from their source text, dates,
//! datetimes, times), shared by the REST and Bulk decoders.

/// A JSON number's text → f64 (`1.2345678E7` included).
pub fn parse_f64(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.is_empty() || !(b[0] == b'-' || b[0].is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Splits a JSON number into (negative, digits without leading zeros, exponent of the last digit).
fn number_parts(text: &str) -> Result<(bool, i128, i32), String> {
    let b = text.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut mant: i128 = 0;
    let mut exp: i32 = 0;
    let mut digits = 0;
    let mut seen_dot = false;
    let mut any = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            any = true;
            if mant != 0 || c != b'0' {
                digits += 1;
                if digits > 38 {
                    return Err("more than 38 significant digits".into());
                }
            }
            mant = mant * 10 + (c - b'0') as i128;
            if seen_dot {
                exp -= 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if c == b'e' || c == b'E' {
            break;
        } else {
            return Err("not a number".into());
        }
        i += 1;
    }
    if !any {
        return Err("not a number".into());
    }
    if i < b.len() {
        let e: i32 = text[i + 1..]
            .trim_start_matches('+')
            .parse()
            .map_err(|_| "bad exponent".to_string())?;
        exp = exp.checked_add(e).ok_or("exponent out of range")?;
    }
    Ok((neg, mant, exp))
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// A JSON number's text → an exact integer; `42.0` and `4.2E1` are fine, `42.5` is not.
pub fn parse_integer(text: &str) -> Result<i128, String> {
    let (neg, mut mant, exp) = number_parts(text)?;
    if exp >= 0 {
        mant = mant
            .checked_mul(pow10(exp as u32).ok_or("out of range")?)
            .ok_or("out of range")?;
    } else {
        let d = pow10((-exp) as u32).unwrap_or(i128::MAX);
        if mant % d != 0 {
            return Err("has a fractional part".into());
        }
        mant /= d;
    }
    Ok(if neg { -mant } else { mant })
}

/// A JSON number's text → an exact Decimal128 value at `scale`, checked against `precision`.
pub fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (neg, mant, exp) = number_parts(text)?;
    let k = exp + scale as i32;
    let v = if k >= 0 {
        mant.checked_mul(pow10(k as u32).ok_or("out of range")?)
            .ok_or("out of range")?
    } else {
        let d = pow10((-k) as u32).unwrap_or(i128::MAX);
        if mant % d != 0 {
            return Err(format!(
                "has more decimal places than the field's scale {scale}"
            ));
        }
        mant / d
    };
    let limit = pow10(precision as u32).unwrap_or(i128::MAX);
    if v >= limit {
        return Err(format!(
            "does not fit the field's precision {precision} (scale {scale})"
        ));
    }
    Ok(if neg { -v } else { v })
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn valid_ymd(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][(m - 1) as usize];
    d <= dim
}

/// `YYYY-MM-DD` → days since the epoch.
pub fn parse_date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        digits(&b[0..4])? as i64,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    );
    valid_ymd(y, m, d).then(|| days_from_civil(y, m, d) as i32)
}

/// Salesforce datetime text → epoch milliseconds (UTC).
///
/// Fast path for `YYYY-MM-DDTHH:MM:SS.sss+0000`; other RFC 3339 / `+HHMM` forms go through chrono.
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // `…000+0000` (REST) or `…000Z` (Bulk API 2.0 CSV)
    if ((b.len() == 28 && &b[23..] == b"+0000") || (b.len() == 24 && b[23] == b'Z'))
        && b[10] == b'T'
        && b[19] == b'.'
        && b[13] == b':'
        && b[16] == b':'
    {
        let days = parse_date_days(&s[..10])? as i64;
        let (h, mi, se, ms) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
            digits(&b[20..23])?,
        );
        if h > 23 || mi > 59 || se > 59 {
            return None;
        }
        return Some(
            days * 86_400_000 + (h as i64 * 3600 + mi as i64 * 60 + se as i64) * 1000 + ms as i64,
        );
    }
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Milliseconds since midnight → `HH:MM:SS.sss`, how a time column is written (SPEC §3: text,
/// because Spark 3.5 reads no Parquet TIME, Spark 4 no TIME(MILLIS), and Delta has no time).
pub fn time_text(ms: i32, buf: &mut [u8; 12]) -> &str {
    let ms = ms.clamp(0, 86_399_999) as u32;
    let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let d = |v: u32| b'0' + v as u8;
    *buf = [
        d(h / 10),
        d(h % 10),
        b':',
        d(m / 10),
        d(m % 10),
        b':',
        d(s / 10),
        d(s % 10),
        b'.',
        d(f / 100),
        d(f / 10 % 10),
        d(f % 10),
    ];
    std::str::from_utf8(buf).expect("ASCII digits")
}

/// Salesforce time text (`10:30:00.000Z`; the `Z` is not a zone) → milliseconds since midnight.
pub fn parse_time_ms(s: &str) -> Option<i32> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let ms = match &b[8..] {
        [] => 0,
        [b'.', rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {
            digits(rest)? * 10u32.pow(3 - rest.len() as u32)
        }
        _ => return None,
    };
    Some(((h * 3600 + m * 60 + sec) * 1000 + ms) as i32)
}
