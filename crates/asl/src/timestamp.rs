//! Timestamps as the States language accepts them.
//!
//! The grammar is the RFC 3339 profile AWS documents, checked the way AWS's runtime checks
//! an "ISO-8601 extended offset date-time": `YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)` with an
//! uppercase `T` and `Z`, seconds required, 1 to 9 fraction digits, a real calendar date
//! (leap years included), no leap second and an offset within ±18:00. Anything else —
//! `2016-12-05 21:29:29Z`, a missing zone, month 13, hour 25 — does not parse.
//!
//! Instants are nanoseconds since the Unix epoch ([`parse_nanos`]) so that comparisons
//! (`TimestampEquals`, …) see every digit the string carries; [`parse`] rounds down to the
//! milliseconds the scheduler works in.

const NANOS_PER_MILLI: i128 = 1_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Parses a timestamp into epoch milliseconds (rounded towards the past).
pub fn parse(s: &str) -> Option<i64> {
    i64::try_from(parse_nanos(s)?.div_euclid(NANOS_PER_MILLI)).ok()
}

/// Parses a timestamp into epoch nanoseconds.
pub fn parse_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20
        || !(b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':')
    {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut fraction = 0;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        fraction = digits(&after_dot[..n])? * 10_i64.pow(9 - n as u32);
        rest = &after_dot[n..];
    }
    let offset_seconds = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if m > 59 || h * 60 + m > 18 * 60 {
                return None;
            }
            let magnitude = h * 3600 + m * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset_seconds;
    Some(i128::from(seconds) * NANOS_PER_SECOND + i128::from(fraction))
}

/// Formats epoch milliseconds the way the context object and the API show instants:
/// `2024-02-07T13:52:02.123Z`.
pub fn format_millis(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (days, secs_of_day) = (
        seconds.div_euclid(SECONDS_PER_DAY),
        seconds.rem_euclid(SECONDS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// The value of a run of ASCII digits; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0_i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_aws_profile() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2012-10-09T19:00:55Z", 1_349_809_255_000),
            ("2012-10-09T20:00:55+01:00", 1_349_809_255_000),
            ("2012-10-09T18:30:55-00:30", 1_349_809_255_000),
            ("2016-03-14T01:59:00Z", 1_457_920_740_000),
            ("2016-03-05T21:29:29.243167252Z", 1_457_213_369_243),
            ("2016-02-29T00:00:00.5Z", 1_456_704_000_500),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2000-02-29T12:00:00+18:00", 951_760_800_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text), Some(ms), "{text}");
        }
        assert_eq!(
            parse_nanos("2016-03-05T21:29:29.243167252Z"),
            Some(1_457_213_369_243_167_252)
        );
        assert_eq!(parse_nanos("1969-12-31T23:59:59.999999999Z"), Some(-1));
    }

    #[test]
    fn rejects_everything_else() {
        let cases = [
            "",
            "2016-12-05 21:29:29Z",
            "2016-12-05t21:29:29Z",
            "2016-12-05T21:29:29z",
            "2016-12-05T21:29:29",
            "2016-13-05T21:29:29Z",
            "2016-00-05T21:29:29Z",
            "2016-12-00T21:29:29Z",
            "2016-12-05T25:29:29Z",
            "2016-12-05T21:60:29Z",
            "2016-12-05T21:29:60Z",
            "2015-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2016-04-31T00:00:00Z",
            "05-12-2016T21:29:29Z",
            "2016-12-05T21:29Z",
            "2016-12-05T21:29:29.Z",
            "2016-12-05T21:29:29.1234567891Z",
            "2016-12-05T21:29:29+0100",
            "2016-12-05T21:29:29+01",
            "2016-12-05T21:29:29+19:00",
            "2016-12-05T21:29:29+01:60",
            "2016-12-05T21:29:29Z ",
            "+2016-12-05T21:29:29Z",
            "2016-12-05T21:29:29.12é",
            "२०१६-12-05T21:29:29Z",
        ];
        for text in cases {
            assert_eq!(parse_nanos(text), None, "{text}");
        }
    }

    #[test]
    fn never_panics_on_mangled_input() {
        let valid = "2016-03-05T21:29:29.243167252+05:30";
        for (i, _) in valid.char_indices() {
            parse_nanos(&valid[..i]);
            for c in ['0', '9', 'T', 'Z', '-', '+', ':', '.', ' ', 'é', '😀'] {
                parse_nanos(&format!("{}{c}{}", &valid[..i], &valid[i + 1..]));
            }
        }
    }

    #[test]
    fn formats_milliseconds() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_707_313_922_123, "2024-02-07T13:52:02.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_millis(ms), text);
            assert_eq!(parse(text), Some(ms));
        }
        format_millis(i64::MIN);
        format_millis(i64::MAX);
    }
}
