//! Datetime text as Salesforce writes it (REST JSON and Bulk API 2.0 CSV), the emulator's own
//! code: the product parses these forms with its decoder, so the two are written apart.

use chrono::{TimeZone, Utc};

/// Salesforce REST datetime text: `2024-03-01T12:34:56.000+0000`.
pub fn sf_datetime(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Appends [`sf_datetime`]'s text without allocating (the emulator's hot path), for years
/// 0–9999.
pub fn push_sf_datetime(out: &mut Vec<u8>, ms: i64) {
    push_datetime(out, ms, false)
}

/// Appends the Bulk API 2.0 CSV form of a datetime, `2024-01-01T00:00:00.000Z`.
pub fn push_bulk_datetime(out: &mut Vec<u8>, ms: i64) {
    push_datetime(out, ms, true)
}

fn push_datetime(out: &mut Vec<u8>, ms: i64, zulu: bool) {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // days since 1970-01-01 → civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut b = *b"0000-00-00T00:00:00.000+0000";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999));
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1000 % 60);
    put(20, 3, ms_of_day % 1000);
    if zulu {
        b[23] = b'Z';
        out.extend_from_slice(&b[..24]);
    } else {
        out.extend_from_slice(&b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_sf_datetime_matches_chrono() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut cases = vec![
            0i64,
            -1,
            951_782_400_000,
            4_102_444_799_999,
            -62_135_596_800_000,
        ];
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            cases.push((rng % 7_000_000_000_000) as i64 - 2_000_000_000_000);
        }
        for ms in cases {
            let mut out = Vec::new();
            push_sf_datetime(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), sf_datetime(ms), "{ms}");
        }
    }

    #[test]
    fn rest_and_bulk_forms() {
        let ms = 1_709_210_828_000; // 2024-02-29T12:47:08Z
        assert_eq!(sf_datetime(ms), "2024-02-29T12:47:08.000+0000");
        let mut out = Vec::new();
        push_bulk_datetime(&mut out, ms + 5);
        assert_eq!(String::from_utf8(out).unwrap(), "2024-02-29T12:47:08.005Z");
    }
}
