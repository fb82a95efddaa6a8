//! Time windows: days of the week and a time-of-day range at a fixed UTC
//! offset. Parsed once at configure time; matching is integer arithmetic.

/// Bit `d` set = day `d` allowed (0 = Sunday .. 6 = Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub days: u8,
    /// Minutes after local midnight; `end` is exclusive, up to 1440.
    pub start: u16,
    pub end: u16,
    /// Offset from UTC in minutes.
    pub offset: i32,
}

pub const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const LONG_DAYS: [&str; 7] = [
    "SUNDAY",
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
];

impl TimeWindow {
    pub fn parse(
        days: &[String],
        start: &str,
        end: &str,
        offset: &str,
    ) -> Result<TimeWindow, (&'static str, String)> {
        let mut mask = 0u8;
        for d in days {
            let up = d.to_ascii_uppercase();
            let n = DAYS
                .iter()
                .position(|x| up == *x)
                .or_else(|| LONG_DAYS.iter().position(|x| up == *x));
            let Some(n) = n else {
                return Err(("days", format!("`{d}` is not a day (use MON..SUN)")));
            };
            mask |= 1 << n;
        }
        if days.is_empty() {
            mask = 0x7f;
        }
        let start = hhmm(start).map_err(|m| ("start", m))?;
        let end = hhmm(end).map_err(|m| ("end", m))?;
        if start == end {
            return Err((
                "end",
                "start and end are equal: the window would be empty".into(),
            ));
        }
        let offset = utc_offset(offset).map_err(|m| ("utc_offset", m))?;
        Ok(TimeWindow {
            days: mask,
            start,
            end,
            offset,
        })
    }

    /// Is `unix` (seconds) inside the window? A window with `start > end`
    /// wraps past midnight; its day is the day it started.
    pub fn contains(&self, unix: u64) -> bool {
        let local = unix as i64 + i64::from(self.offset) * 60;
        let days = local.div_euclid(86_400);
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7) as u8;
        let yesterday = (weekday + 6) % 7;
        let day_ok = |d: u8| self.days & (1 << d) != 0;
        if self.start < self.end {
            day_ok(weekday) && minute >= self.start && minute < self.end
        } else {
            (day_ok(weekday) && minute >= self.start) || (day_ok(yesterday) && minute < self.end)
        }
    }
}

/// `HH:MM`, 00:00..=24:00.
fn hhmm(t: &str) -> Result<u16, String> {
    let err = || format!("`{t}` is not a time of day HH:MM (00:00..24:00)");
    let (h, m) = t.split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

/// `Z`, `+02:00`, `-05:30`.
fn utc_offset(t: &str) -> Result<i32, String> {
    if t == "Z" || t.is_empty() {
        return Ok(0);
    }
    let err = || format!("`{t}` is not a UTC offset like +02:00 or -05:30");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(err()),
    };
    let mins = hhmm(rest).map_err(|_| err())?;
    if mins > 14 * 60 {
        return Err(err());
    }
    Ok(sign * i32::from(mins))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &[&str], s: &str, e: &str, off: &str) -> TimeWindow {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        TimeWindow::parse(&days, s, e, off).unwrap()
    }

    // 2024-01-01T00:00:00Z was a Monday.
    const MON0: u64 = 1_704_067_200;

    #[test]
    fn weekday_hours_and_offset() {
        let biz = w(&["MON", "tue", "Wednesday"], "09:00", "17:00", "Z");
        assert!(biz.contains(MON0 + 9 * 3600));
        assert!(biz.contains(MON0 + 17 * 3600 - 1));
        assert!(!biz.contains(MON0 + 17 * 3600));
        assert!(!biz.contains(MON0 + 8 * 3600 + 59 * 60));
        assert!(biz.contains(MON0 + 86_400 * 2 + 10 * 3600)); // Wednesday
        assert!(!biz.contains(MON0 + 86_400 * 3 + 10 * 3600)); // Thursday
                                                               // +02:00: 07:30Z Monday is 09:30 local
        let plus2 = w(&["MON"], "09:00", "17:00", "+02:00");
        assert!(plus2.contains(MON0 + 7 * 3600 + 1800));
        assert!(!plus2.contains(MON0 + 15 * 3600 + 1));
        // -05:00: Monday 02:00Z is Sunday 21:00 local
        let minus5 = w(&["SUN"], "20:00", "22:00", "-05:00");
        assert!(minus5.contains(MON0 + 2 * 3600));
    }

    #[test]
    fn wrapping_window_and_all_days() {
        let night = w(&["FRI"], "22:00", "06:00", "Z");
        let fri = MON0 + 4 * 86_400;
        assert!(night.contains(fri + 23 * 3600));
        assert!(night.contains(fri + 86_400 + 5 * 3600)); // Saturday early morning
        assert!(!night.contains(fri + 5 * 3600)); // Friday early morning: Thursday's night
        let all = w(&[], "00:00", "24:00", "Z");
        assert!(all.contains(MON0 + 86_399));
    }

    #[test]
    fn rejects_bad_values() {
        let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            TimeWindow::parse(&d(&["MOON"]), "09:00", "10:00", "Z")
                .unwrap_err()
                .0,
            "days"
        );
        assert_eq!(
            TimeWindow::parse(&[], "9:00", "10:00", "Z").unwrap_err().0,
            "start"
        );
        assert_eq!(
            TimeWindow::parse(&[], "09:00", "24:01", "Z").unwrap_err().0,
            "end"
        );
        assert_eq!(
            TimeWindow::parse(&[], "09:00", "09:00", "Z").unwrap_err().0,
            "end"
        );
        assert_eq!(
            TimeWindow::parse(&[], "09:00", "10:00", "2").unwrap_err().0,
            "utc_offset"
        );
        assert_eq!(
            TimeWindow::parse(&[], "09:00", "10:00", "+15:00")
                .unwrap_err()
                .0,
            "utc_offset"
        );
    }
}
