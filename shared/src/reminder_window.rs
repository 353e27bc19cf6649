//! A business's daily reminder window, the hourly retries of reminders held for lack of credit,
//! and quiet hours: all wall-clock times in the business's own IANA zone, turned into UTC
//! instants here so the scheduler and the sender only ever compare instants.
//!
//! Every wall-clock time becomes an instant through [`local_instant`], so daylight saving is
//! decided in one place: a local time the clock skips means the first instant after the gap, and
//! one it shows twice means the earlier. Both are the first instant at which the clock reads that
//! time or later, which keeps later local times at later (or equal) instants; a window therefore
//! opens exactly once on every local day.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The furthest ahead, in days, a window may remind about appointments.
pub const MAX_DAYS_AHEAD: u32 = 14;

/// How long after a window opens reminders held for lack of credit are still retried: a 10:00
/// window's last retry is at 15:00 ("top up before 3 pm").
pub const CREDIT_RETRY_SPAN: TimeDelta = TimeDelta::hours(5);

/// How long a retry stays due: the scheduler ticks once a minute, so exactly one tick sees it.
const TICK: TimeDelta = TimeDelta::minutes(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the window must end after it starts on the same day, not run from {start} to {end}")]
    EndNotAfterStart { start: NaiveTime, end: NaiveTime },
    #[error("reminders can be sent 0 to {MAX_DAYS_AHEAD} days ahead, not {0}")]
    DaysAhead(u32),
    #[error("{0} is not a whole minute")]
    NotWholeMinute(NaiveTime),
    #[error("quiet hours must not start and end at the same time ({0})")]
    EmptyQuietHours(NaiveTime),
    #[error("{0:?} is not a time of day written as HH:MM")]
    BadTime(String),
}

/// The instant a business's clock reads `time` on `date`. A time the clock skips (spring
/// forward) means the first instant after the gap, whatever the gap's size; a time it shows twice
/// (fall back) means the earlier occurrence.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    instant_of(tz, date.and_time(time))
}

/// [start of local day `date`, start of the next) in UTC: 24 hours, or 23 and 25 (23½ and
/// 24½ on Lord Howe Island) on daylight-saving days. A day whose midnight is skipped starts at the
/// end of the gap; a day the zone skipped entirely (Samoa, 30 December 2011) has no length.
pub fn local_day_bounds(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (local_instant(tz, date, NaiveTime::MIN), local_instant(tz, next_day(date), NaiveTime::MIN))
}

/// The business's calendar date at `t`: daily allowances reset at the clinic's midnight.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The daily window in which reminders go out, in the business's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowRepr", into = "WindowRepr")]
pub struct ReminderWindow {
    start: NaiveTime,
    end: NaiveTime,
    days_ahead: u32,
}

/// Where a window stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open {
        opened_at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
        /// The local date of the appointments to remind about: the window's own local date plus
        /// `days_ahead`.
        target_date: NaiveDate,
    },
    Closed {
        next_opening: DateTime<Utc>,
    },
}

impl ReminderWindow {
    /// Times are whole minutes (the scheduler ticks once a minute, and they are stored as HH:MM);
    /// the window ends on the day it starts.
    pub fn new(start: NaiveTime, end: NaiveTime, days_ahead: u32) -> Result<Self, WindowError> {
        whole_minute(start)?;
        whole_minute(end)?;
        if start >= end {
            return Err(WindowError::EndNotAfterStart { start, end });
        }
        if days_ahead > MAX_DAYS_AHEAD {
            return Err(WindowError::DaysAhead(days_ahead));
        }
        Ok(Self { start, end, days_ahead })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// 1 reminds about tomorrow's appointments.
    pub fn days_ahead(&self) -> u32 {
        self.days_ahead
    }

    /// When the window of local day `local_date` opens.
    pub fn opening_on(&self, tz: Tz, local_date: NaiveDate) -> DateTime<Utc> {
        local_instant(tz, local_date, self.start)
    }

    /// When the window of local day `local_date` closes. A window the clock skips whole (it lies
    /// in a daylight-saving gap) would close the instant it opens and never be seen open, losing
    /// that day's reminders; it stays open for its usual length from the end of the gap instead.
    pub fn closing_on(&self, tz: Tz, local_date: NaiveDate) -> DateTime<Utc> {
        let opening = self.opening_on(tz, local_date);
        let closing = local_instant(tz, local_date, self.end);
        if closing > opening { closing } else { opening + (self.end - self.start) }
    }

    /// Open from the opening instant (included) to the closing one (excluded).
    pub fn state_at(&self, tz: Tz, now: DateTime<Utc>) -> WindowState {
        let today = local_date(tz, now);
        // A window normally lies within its own local day, but one pushed past a gap at midnight,
        // or held open after a gap, can reach into the next: the neighbouring days are checked
        // too, and the latest window wins.
        let open = [next_day(today), today, prev_day(today)].into_iter().find_map(|day| {
            let opened_at = self.opening_on(tz, day);
            let closes_at = self.closing_on(tz, day);
            let target_date = add_days(day, self.days_ahead);
            (opened_at <= now && now < closes_at).then_some(WindowState::Open { opened_at, closes_at, target_date })
        });
        open.unwrap_or_else(|| WindowState::Closed { next_opening: self.next_opening_after(tz, now) })
    }

    /// The first opening strictly after `t`.
    pub fn next_opening_after(&self, tz: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
        // Openings never move back from one local day to the next, so the first day whose opening
        // is after `t` gives it; starting from yesterday covers a window pushed past midnight.
        prev_day(local_date(tz, t))
            .iter_days()
            .map(|day| self.opening_on(tz, day))
            .find(|opening| *opening > t)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Every instant strictly after `opened_at`, and no more than [`CREDIT_RETRY_SPAN`] after it,
/// at which the business's clock reads a whole hour: a 10:00 window's held reminders are retried
/// at 11:00, 12:00, 13:00, 14:00 and 15:00. The span is elapsed time, not wall-clock time, so on
/// a daylight-saving night the last retry can read an hour earlier or later. An hour the clock
/// skips has no retry; an hour it shows twice has two, an hour apart like all the others.
pub fn credit_retry_times(tz: Tz, opened_at: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let last = opened_at + CREDIT_RETRY_SPAN;
    // The local times shown in the span lie between these bounds, as long as every offset in force
    // in it is seen at a half-hourly sample (no zone keeps an offset for less than that).
    let offsets: Vec<TimeDelta> = (0..=10)
        .map(|k| opened_at + TimeDelta::minutes(30 * k))
        .map(|t| t.with_timezone(&tz).naive_local() - t.naive_utc())
        .collect();
    let (Some(lowest), Some(highest)) = (offsets.iter().min(), offsets.iter().max()) else {
        return Vec::new();
    };
    let until = last.naive_utc() + *highest;
    let mut hour = floor_hour(opened_at.naive_utc() + *lowest);
    let mut times = Vec::new();
    while hour <= until {
        match tz.from_local_datetime(&hour) {
            LocalResult::Single(t) => times.push(t.to_utc()),
            LocalResult::Ambiguous(a, b) => times.extend([a.to_utc(), b.to_utc()]),
            LocalResult::None => {}
        }
        hour += TimeDelta::hours(1);
    }
    times.retain(|t| opened_at < *t && *t <= last);
    times.sort_unstable();
    times.dedup();
    times
}

/// The first credit retry strictly after `now`, if any is left. A `now` exactly on a retry time
/// gives the one after: that retry is due now (see [`credit_retry_due`]), not next.
pub fn next_credit_retry(tz: Tz, opened_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    credit_retry_times(tz, opened_at).into_iter().find(|t| *t > now)
}

/// Whether the scheduler tick `tick` should retry held reminders: it falls in the minute that
/// starts at one of the retry times, so exactly one tick of a once-a-minute scheduler does.
pub fn credit_retry_due(tz: Tz, opened_at: DateTime<Utc>, tick: DateTime<Utc>) -> bool {
    credit_retry_times(tz, opened_at).iter().any(|t| *t <= tick && tick < *t + TICK)
}

/// Hours in which the sender holds texts, in the business's local time; they may wrap midnight
/// (20:00–08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "QuietRepr", into = "QuietRepr")]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// Start and end must differ: quiet all day would hold texts for ever.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, WindowError> {
        whole_minute(start)?;
        whole_minute(end)?;
        if start == end {
            return Err(WindowError::EmptyQuietHours(start));
        }
        Ok(Self { start, end })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }

    pub fn wraps_midnight(&self) -> bool {
        self.end < self.start
    }

    /// When the quiet period `t` falls in ends, or `None` if `t` is not in one. Start included,
    /// end excluded. A quiet period the clock skips whole holds nothing: no local time falls in it.
    pub fn holds(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = local_date(tz, t);
        [prev_day(today), today, next_day(today)].into_iter().find_map(|day| {
            let (begins, ends) = self.period_starting_on(tz, day);
            (begins <= t && t < ends).then_some(ends)
        })
    }

    /// The quiet period that starts on local day `day`, ending the next day when it wraps.
    fn period_starting_on(&self, tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let end_day = if self.wraps_midnight() { next_day(day) } else { day };
        (local_instant(tz, day, self.start), local_instant(tz, end_day, self.end))
    }
}

/// The first instant at which the clock reads `local` or later.
fn instant_of(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.to_utc(),
        LocalResult::Ambiguous(a, b) => a.to_utc().min(b.to_utc()),
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The instant a gap containing `local` ends, found by bisection on whole seconds (offset changes
/// fall on whole seconds), since chrono-tz does not expose its transitions. Offsets stay well
/// within ±36 hours, so the clock reads before `local` 36 hours before it (as if it were UTC)
/// and after it 36 hours after.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let reads_at_least = |secs: i64| at_second(secs).with_timezone(&tz).naive_local() >= local;
    let as_utc = local.and_utc().timestamp();
    let (mut before, mut after) = (as_utc.saturating_sub(36 * 3600), as_utc.saturating_add(36 * 3600));
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if reads_at_least(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    at_second(after)
}

fn at_second(secs: i64) -> DateTime<Utc> {
    let beyond = if secs < 0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC };
    DateTime::from_timestamp(secs, 0).unwrap_or(beyond)
}

fn floor_hour(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_time(NaiveTime::MIN) + TimeDelta::hours(t.hour().into())
}

fn whole_minute(time: NaiveTime) -> Result<(), WindowError> {
    if time.second() == 0 && time.nanosecond() == 0 { Ok(()) } else { Err(WindowError::NotWholeMinute(time)) }
}

fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(date)
}

fn prev_day(date: NaiveDate) -> NaiveDate {
    date.pred_opt().unwrap_or(date)
}

fn add_days(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(days.into())).unwrap_or(NaiveDate::MAX)
}

/// Strictly `HH:MM`, so what is stored reads back the same.
fn parse_hh_mm(text: &str) -> Result<NaiveTime, WindowError> {
    let bad = || WindowError::BadTime(text.to_owned());
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(bad());
    }
    let (Ok(hours), Ok(minutes)) = (hours.parse(), minutes.parse()) else { return Err(bad()) };
    NaiveTime::from_hms_opt(hours, minutes, 0).ok_or_else(bad)
}

fn hh_mm(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReminderWindow))]
struct WindowRepr {
    start: String,
    end: String,
    days_ahead: u32,
}

impl TryFrom<WindowRepr> for ReminderWindow {
    type Error = WindowError;

    fn try_from(repr: WindowRepr) -> Result<Self, WindowError> {
        Self::new(parse_hh_mm(&repr.start)?, parse_hh_mm(&repr.end)?, repr.days_ahead)
    }
}

impl From<ReminderWindow> for WindowRepr {
    fn from(window: ReminderWindow) -> Self {
        Self { start: hh_mm(window.start), end: hh_mm(window.end), days_ahead: window.days_ahead }
    }
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = QuietHours))]
struct QuietRepr {
    start: String,
    end: String,
}

impl TryFrom<QuietRepr> for QuietHours {
    type Error = WindowError;

    fn try_from(repr: QuietRepr) -> Result<Self, WindowError> {
        Self::new(parse_hh_mm(&repr.start)?, parse_hh_mm(&repr.end)?)
    }
}

impl From<QuietHours> for QuietRepr {
    fn from(quiet: QuietHours) -> Self {
        Self { start: hh_mm(quiet.start), end: hh_mm(quiet.end) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{New_York, Sao_Paulo};
    use chrono_tz::Asia::{Beirut, Kolkata};
    use chrono_tz::Australia::{Lord_Howe, Sydney};
    use chrono_tz::Europe::London;
    use chrono_tz::Pacific::{Apia, Chatham};
    use serde_json::json;

    fn hm(text: &str) -> NaiveTime {
        parse_hh_mm(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn window(start: &str, end: &str, days_ahead: u32) -> ReminderWindow {
        ReminderWindow::new(hm(start), hm(end), days_ahead).unwrap_or_else(|e| panic!("{e}"))
    }

    fn quiet(start: &str, end: &str) -> QuietHours {
        QuietHours::new(hm(start), hm(end)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The instant the business's clock reads `local` ("2026-03-08 10:00").
    fn at(tz: Tz, local: &str) -> DateTime<Utc> {
        let Some((day, time)) = local.split_once(' ') else { panic!("{local}: date and time") };
        local_instant(tz, date(day), hm(time))
    }

    /// `t` as the business's clock shows it, with the offset in force.
    fn shown(tz: Tz, t: DateTime<Utc>) -> String {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M%:z").to_string()
    }

    fn shown_all(tz: Tz, times: &[DateTime<Utc>]) -> Vec<String> {
        times.iter().map(|t| shown(tz, *t)).collect()
    }

    fn hours(h: f64) -> TimeDelta {
        TimeDelta::seconds((h * 3600.0) as i64)
    }

    #[derive(Debug, Default)]
    struct Run {
        openings: Vec<DateTime<Utc>>,
        targets: Vec<NaiveDate>,
        open_minutes: i64,
    }

    /// Ticks once a minute through [from, to) as the scheduler does, noting each tick that finds
    /// the window newly open, and checking on the way that a closed window announces exactly the
    /// opening a later tick then finds.
    fn tick_through(w: &ReminderWindow, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Run {
        let mut run = Run::default();
        let (mut was_open, mut announced) = (false, None);
        let mut tick = from;
        while tick < to {
            match w.state_at(tz, tick) {
                WindowState::Open { opened_at, closes_at, target_date } => {
                    assert!(opened_at <= tick && tick < closes_at, "{tick}: {opened_at}..{closes_at}");
                    if !was_open {
                        assert_eq!(opened_at, tick, "a tick finds the window the minute it opens");
                        if let Some(announced) = announced {
                            assert_eq!(announced, opened_at, "the closed window announced this opening");
                        }
                        run.openings.push(opened_at);
                        run.targets.push(target_date);
                    }
                    run.open_minutes += 1;
                    was_open = true;
                }
                WindowState::Closed { next_opening } => {
                    assert!(next_opening > tick, "{tick}: next opening {next_opening}");
                    announced = Some(next_opening);
                    was_open = false;
                }
            }
            tick += TICK;
        }
        run
    }

    fn tick_through_day(w: &ReminderWindow, tz: Tz, day: &str) -> Run {
        let (start, end) = local_day_bounds(tz, date(day));
        tick_through(w, tz, start, end)
    }

    #[test]
    fn a_window_ends_after_it_starts_and_looks_at_most_two_weeks_ahead() {
        let refused = |start, end| ReminderWindow::new(hm(start), hm(end), 1);
        assert_eq!(
            refused("11:00", "10:00"),
            Err(WindowError::EndNotAfterStart { start: hm("11:00"), end: hm("10:00") })
        );
        assert!(matches!(refused("10:00", "10:00"), Err(WindowError::EndNotAfterStart { .. })));
        assert_eq!(ReminderWindow::new(hm("10:00"), hm("11:00"), 15), Err(WindowError::DaysAhead(15)));
        assert!(ReminderWindow::new(hm("00:00"), hm("23:59"), 0).is_ok());
        let w = window("10:00", "11:00", 14);
        assert_eq!((w.start(), w.end(), w.days_ahead()), (hm("10:00"), hm("11:00"), 14));
    }

    #[test]
    fn window_and_quiet_times_are_whole_minutes() {
        let Some(odd) = NaiveTime::from_hms_opt(10, 0, 30) else { panic!("a time") };
        assert_eq!(ReminderWindow::new(odd, hm("11:00"), 1), Err(WindowError::NotWholeMinute(odd)));
        assert_eq!(QuietHours::new(hm("08:00"), odd), Err(WindowError::NotWholeMinute(odd)));
    }

    #[test]
    fn a_window_reads_and_writes_as_hh_mm() {
        let w = window("10:00", "11:00", 1);
        let written = serde_json::to_value(w).ok();
        assert_eq!(written, Some(json!({"start": "10:00", "end": "11:00", "days_ahead": 1})));
        let read: Result<ReminderWindow, _> =
            serde_json::from_value(json!({"start": "07:05", "end": "23:59", "days_ahead": 2}));
        assert_eq!(read.ok(), Some(window("07:05", "23:59", 2)));
    }

    #[test]
    fn a_malformed_or_invalid_window_is_refused_when_read() {
        let bad = [
            json!({"start": "11:00", "end": "10:00", "days_ahead": 1}),
            json!({"start": "10:00", "end": "11:00", "days_ahead": 15}),
            json!({"start": "9:00", "end": "11:00", "days_ahead": 1}),
            json!({"start": "10:00:00", "end": "11:00", "days_ahead": 1}),
            json!({"start": "10:00", "end": "24:00", "days_ahead": 1}),
            json!({"start": "10:60", "end": "11:00", "days_ahead": 1}),
            json!({"start": " 10:00", "end": "11:00", "days_ahead": 1}),
            json!({"start": "+1:00", "end": "11:00", "days_ahead": 1}),
            json!({"start": "10:00", "end": "11:00"}),
        ];
        for value in bad {
            assert!(serde_json::from_value::<ReminderWindow>(value.clone()).is_err(), "{value}");
        }
    }

    #[test]
    fn a_skipped_local_time_means_the_first_instant_after_the_gap() {
        let day = date("2026-03-08");
        assert_eq!(local_instant(New_York, day, hm("02:30")), utc("2026-03-08T07:00:00Z"));
        assert_eq!(local_instant(New_York, day, hm("02:00")), utc("2026-03-08T07:00:00Z"));
        assert_eq!(local_instant(New_York, day, hm("03:00")), utc("2026-03-08T07:00:00Z"));
        assert_eq!(local_instant(New_York, day, hm("01:59")), utc("2026-03-08T06:59:00Z"));
        assert_eq!(shown(London, at(London, "2026-03-29 01:30")), "2026-03-29 02:00+01:00");
        assert_eq!(shown(Sydney, at(Sydney, "2026-10-04 02:30")), "2026-10-04 03:00+11:00");
        // Lord Howe Island moves its clocks by half an hour: 02:00 → 02:30.
        assert_eq!(shown(Lord_Howe, at(Lord_Howe, "2026-10-04 02:10")), "2026-10-04 02:30+11:00");
        assert_eq!(shown(Lord_Howe, at(Lord_Howe, "2026-10-04 01:59")), "2026-10-04 01:59+10:30");
    }

    #[test]
    fn a_repeated_local_time_means_the_earlier_occurrence() {
        assert_eq!(at(New_York, "2026-11-01 01:30"), utc("2026-11-01T05:30:00Z"));
        assert_eq!(at(New_York, "2026-11-01 02:00"), utc("2026-11-01T07:00:00Z"));
        assert_eq!(shown(London, at(London, "2026-10-25 01:30")), "2026-10-25 01:30+01:00");
        assert_eq!(shown(Sydney, at(Sydney, "2026-04-05 02:30")), "2026-04-05 02:30+11:00");
        assert_eq!(shown(Lord_Howe, at(Lord_Howe, "2026-04-05 01:45")), "2026-04-05 01:45+11:00");
        assert_eq!(at(Kolkata, "2026-03-08 10:00"), utc("2026-03-08T04:30:00Z"));
    }

    #[test]
    fn local_days_last_23_or_25_hours_across_dst_changes_and_24_otherwise() {
        let cases = [
            (New_York, "2026-03-08", 23.0),
            (New_York, "2026-03-09", 24.0),
            (New_York, "2026-11-01", 25.0),
            (London, "2026-03-29", 23.0),
            (London, "2026-10-25", 25.0),
            (Sydney, "2026-04-05", 25.0),
            (Sydney, "2026-10-04", 23.0),
            (Lord_Howe, "2026-04-05", 24.5),
            (Lord_Howe, "2026-10-04", 23.5),
            (Chatham, "2026-09-27", 23.0),
            (Kolkata, "2026-03-08", 24.0),
            (Kolkata, "2026-11-01", 24.0),
        ];
        for (tz, day, length) in cases {
            let (start, end) = local_day_bounds(tz, date(day));
            assert_eq!(end - start, hours(length), "{tz} {day}");
            assert_eq!(shown(tz, start), format!("{day} 00:00{}", start.with_timezone(&tz).format("%:z")));
        }
        assert_eq!(local_day_bounds(Kolkata, date("2026-01-02")).0, utc("2026-01-01T18:30:00Z"));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_after_the_gap() {
        // Lebanon and (until 2019) Brazil put their clocks forward at midnight.
        let (start, end) = local_day_bounds(Beirut, date("2026-03-29"));
        assert_eq!((shown(Beirut, start), end - start), ("2026-03-29 01:00+03:00".to_owned(), hours(23.0)));
        let (start, end) = local_day_bounds(Sao_Paulo, date("2018-11-04"));
        assert_eq!((shown(Sao_Paulo, start), end - start), ("2018-11-04 01:00-02:00".to_owned(), hours(23.0)));
        assert_eq!(local_date(Sao_Paulo, start), date("2018-11-04"));
        assert_eq!(local_date(Sao_Paulo, start - TimeDelta::seconds(1)), date("2018-11-03"));
    }

    #[test]
    fn a_day_the_zone_skipped_entirely_has_no_length_yet_its_reminders_still_go_out() {
        // Samoa went from 29 to 31 December 2011, crossing the date line.
        let (start, end) = local_day_bounds(Apia, date("2011-12-30"));
        assert_eq!((start, end), (utc("2011-12-30T10:00:00Z"), utc("2011-12-30T10:00:00Z")));
        let w = window("10:00", "11:00", 1);
        let run = tick_through(&w, Apia, at(Apia, "2011-12-29 00:00"), at(Apia, "2012-01-01 00:00"));
        let expected = ["2011-12-29 10:00-10:00", "2011-12-31 00:00+14:00", "2011-12-31 10:00+14:00"];
        assert_eq!(shown_all(Apia, &run.openings), expected);
        assert_eq!(run.targets, [date("2011-12-30"), date("2011-12-31"), date("2012-01-01")]);
    }

    #[test]
    fn the_local_date_turns_at_the_clinics_midnight() {
        assert_eq!(local_date(Kolkata, utc("2026-01-01T18:29:59Z")), date("2026-01-01"));
        assert_eq!(local_date(Kolkata, utc("2026-01-01T18:30:00Z")), date("2026-01-02"));
        // 23:30 on the long day is still that day, after the repeated hour.
        assert_eq!(local_date(New_York, utc("2026-11-02T04:30:00Z")), date("2026-11-01"));
        assert_eq!(local_date(New_York, utc("2026-11-02T05:00:00Z")), date("2026-11-02"));
    }

    #[test]
    fn a_ten_to_eleven_window_is_open_for_that_local_hour_and_reminds_about_tomorrow() {
        let w = window("10:00", "11:00", 1);
        let zones = [New_York, London, Sydney, Kolkata, Chatham, Lord_Howe];
        let days = ["2026-01-15", "2026-03-08", "2026-03-29", "2026-04-05", "2026-10-04", "2026-10-25", "2026-11-01"];
        let second = TimeDelta::seconds(1);
        for tz in zones {
            for day in days {
                let (opens, closes) = (at(tz, &format!("{day} 10:00")), at(tz, &format!("{day} 11:00")));
                assert_eq!(closes - opens, TimeDelta::hours(1), "{tz} {day}");
                let open =
                    WindowState::Open { opened_at: opens, closes_at: closes, target_date: add_days(date(day), 1) };
                assert_eq!(w.state_at(tz, opens - second), WindowState::Closed { next_opening: opens }, "{tz} {day}");
                assert_eq!(w.state_at(tz, opens), open, "{tz} {day}");
                assert_eq!(w.state_at(tz, closes - second), open, "{tz} {day}");
                let tomorrow = w.opening_on(tz, add_days(date(day), 1));
                assert_eq!(w.state_at(tz, closes), WindowState::Closed { next_opening: tomorrow }, "{tz} {day}");
                let run = tick_through_day(&w, tz, day);
                assert_eq!((run.openings, run.open_minutes), (vec![opens], 60), "{tz} {day}");
            }
        }
        assert_eq!(w.opening_on(Kolkata, date("2026-06-10")), utc("2026-06-10T04:30:00Z"));
        assert_eq!(w.opening_on(Chatham, date("2026-01-15")), utc("2026-01-14T20:15:00Z"));
        assert_eq!(w.opening_on(Chatham, date("2026-06-10")), utc("2026-06-09T21:15:00Z"));
        let Ok(same_day) = ReminderWindow::new(hm("10:00"), hm("11:00"), 0) else { panic!("valid") };
        let state = same_day.state_at(London, at(London, "2026-12-31 10:30"));
        assert!(matches!(state, WindowState::Open { target_date, .. } if target_date == date("2026-12-31")));
        let state = window("10:00", "11:00", 14).state_at(London, at(London, "2026-12-31 10:30"));
        assert!(matches!(state, WindowState::Open { target_date, .. } if target_date == date("2027-01-14")));
    }

    #[test]
    fn a_window_in_the_skipped_hour_opens_once_at_the_end_of_the_gap() {
        let cases = [
            (New_York, "02:30", "03:30", "2026-03-08", "2026-03-08 03:00-04:00", 30),
            (London, "01:30", "02:30", "2026-03-29", "2026-03-29 02:00+01:00", 30),
            (Sydney, "02:30", "03:30", "2026-10-04", "2026-10-04 03:00+11:00", 30),
            (Lord_Howe, "02:15", "03:00", "2026-10-04", "2026-10-04 02:30+11:00", 30),
            (Chatham, "03:00", "04:00", "2026-09-27", "2026-09-27 03:45+13:45", 15),
        ];
        for (tz, start, end, day, opens, minutes) in cases {
            let w = window(start, end, 1);
            let run = tick_through_day(&w, tz, day);
            assert_eq!(shown_all(tz, &run.openings), [opens], "{tz} {day}");
            assert_eq!(run.open_minutes, minutes, "{tz} {day}");
            assert_eq!(run.targets, [add_days(date(day), 1)], "{tz} {day}");
        }
    }

    #[test]
    fn a_window_in_the_repeated_hour_opens_once_in_its_first_occurrence() {
        let cases = [
            (New_York, "01:15", "01:45", "2026-11-01", "2026-11-01 01:15-04:00", 30),
            // Opens in the first 01:30 and closes at the only 02:30, two hours later.
            (New_York, "01:30", "02:30", "2026-11-01", "2026-11-01 01:30-04:00", 120),
            (New_York, "02:30", "03:30", "2026-11-01", "2026-11-01 02:30-05:00", 60),
            (London, "01:15", "01:45", "2026-10-25", "2026-10-25 01:15+01:00", 30),
            (Sydney, "02:15", "02:45", "2026-04-05", "2026-04-05 02:15+11:00", 30),
            (Lord_Howe, "01:40", "01:50", "2026-04-05", "2026-04-05 01:40+11:00", 10),
        ];
        for (tz, start, end, day, opens, minutes) in cases {
            let w = window(start, end, 1);
            let run = tick_through_day(&w, tz, day);
            assert_eq!(shown_all(tz, &run.openings), [opens], "{tz} {day}");
            assert_eq!(run.open_minutes, minutes, "{tz} {day}");
        }
    }

    #[test]
    fn a_window_the_gap_swallows_whole_stays_open_for_its_usual_length_after_it() {
        let w = window("02:05", "02:50", 1);
        let run = tick_through_day(&w, New_York, "2026-03-08");
        assert_eq!((shown_all(New_York, &run.openings), run.open_minutes), (vec!["2026-03-08 03:00-04:00".into()], 45));
        let w = window("02:00", "02:30", 1);
        assert_eq!(w.closing_on(Lord_Howe, date("2026-10-04")), at(Lord_Howe, "2026-10-04 03:00"));
        let run = tick_through_day(&w, Lord_Howe, "2026-10-04");
        assert_eq!(
            (shown_all(Lord_Howe, &run.openings), run.open_minutes),
            (vec!["2026-10-04 02:30+11:00".into()], 30)
        );
    }

    #[test]
    fn ticking_through_the_days_around_each_change_opens_once_a_day() {
        let cases = [
            (New_York, "02:30", "03:30", "2026-03-07", "2026-03-10"),
            (New_York, "02:30", "03:30", "2026-10-31", "2026-11-03"),
            (New_York, "01:00", "02:00", "2026-10-31", "2026-11-03"),
            (London, "01:00", "02:00", "2026-03-28", "2026-03-31"),
            (London, "01:00", "02:00", "2026-10-24", "2026-10-27"),
            (Sydney, "02:00", "03:00", "2026-04-04", "2026-04-07"),
            (Sydney, "02:00", "03:00", "2026-10-03", "2026-10-06"),
            (Lord_Howe, "01:30", "02:30", "2026-04-04", "2026-04-07"),
            (Lord_Howe, "01:30", "02:30", "2026-10-03", "2026-10-06"),
            (Kolkata, "00:00", "23:59", "2026-03-07", "2026-03-10"),
        ];
        for (tz, start, end, from, to) in cases {
            let w = window(start, end, 2);
            let run = tick_through(&w, tz, local_day_bounds(tz, date(from)).0, local_day_bounds(tz, date(to)).0);
            let days: Vec<NaiveDate> = run.openings.iter().map(|t| local_date(tz, *t)).collect();
            assert_eq!(days, date(from).iter_days().take(3).collect::<Vec<_>>(), "{tz} {start}");
            assert_eq!(run.targets, add_days(date(from), 2).iter_days().take(3).collect::<Vec<_>>(), "{tz} {start}");
        }
    }

    #[test]
    fn a_window_opens_on_every_local_day_of_the_year_in_every_zone() {
        let cases = [
            (New_York, "02:30"),
            (London, "01:30"),
            (Sydney, "02:30"),
            (Lord_Howe, "02:10"),
            (Chatham, "02:50"),
            (Beirut, "00:00"),
            (Kolkata, "10:00"),
        ];
        for (tz, start) in cases {
            let w = ReminderWindow::new(hm(start), hm(start) + TimeDelta::hours(1), 1);
            let Ok(w) = w else { panic!("valid") };
            let mut opening = w.next_opening_after(tz, local_day_bounds(tz, date("2025-12-31")).1 - TICK);
            for day in date("2026-01-01").iter_days().take(365) {
                assert_eq!(local_date(tz, opening), day, "{tz} {start}");
                // On time, or pushed to the end of a gap the start time lies in.
                let wanted = day.and_time(hm(start));
                let reads = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
                let pushed = reads(opening - TimeDelta::seconds(1)) < wanted && wanted < reads(opening);
                assert!(reads(opening) == wanted || pushed, "{tz} {day}: {}", shown(tz, opening));
                let state = w.state_at(tz, opening);
                assert!(matches!(state, WindowState::Open { target_date, .. } if target_date == add_days(day, 1)));
                let next = w.next_opening_after(tz, opening);
                assert!(next - opening >= hours(22.5) && next - opening <= hours(25.5), "{tz} {day}");
                opening = next;
            }
        }
    }

    #[test]
    fn the_next_opening_after_closing_is_tomorrows_even_across_a_dst_change() {
        let w = window("10:00", "11:00", 1);
        let cases = [
            (New_York, "2026-03-07", 23.0),
            (New_York, "2026-10-31", 25.0),
            (London, "2026-03-28", 23.0),
            (London, "2026-10-24", 25.0),
            (Sydney, "2026-04-04", 25.0),
            (Sydney, "2026-10-03", 23.0),
            (Lord_Howe, "2026-04-04", 24.5),
            (Lord_Howe, "2026-10-03", 23.5),
            (Kolkata, "2026-03-07", 24.0),
        ];
        for (tz, day, apart) in cases {
            let today = date(day);
            let closed = w.closing_on(tz, today) + TimeDelta::seconds(1);
            let next = w.next_opening_after(tz, closed);
            assert_eq!(shown(tz, next).get(..16), Some(format!("{} 10:00", add_days(today, 1)).as_str()));
            assert_eq!(next - w.opening_on(tz, today), hours(apart), "{tz} {day}");
        }
    }

    #[test]
    fn the_next_opening_is_strictly_after_the_given_instant() {
        let w = window("10:00", "11:00", 1);
        let today = at(New_York, "2026-06-10 10:00");
        let tomorrow = at(New_York, "2026-06-11 10:00");
        assert_eq!(w.next_opening_after(New_York, today - TimeDelta::nanoseconds(1)), today);
        assert_eq!(w.next_opening_after(New_York, today), tomorrow);
        assert_eq!(w.next_opening_after(New_York, at(New_York, "2026-06-10 23:59")), tomorrow);
        assert_eq!(w.next_opening_after(New_York, at(New_York, "2026-06-10 00:00")), today);
    }

    #[test]
    fn credit_retries_fall_on_each_local_hour_for_five_hours_after_opening() {
        let retries = credit_retry_times(New_York, at(New_York, "2026-06-10 10:00"));
        let expected = ["11:00", "12:00", "13:00", "14:00", "15:00"].map(|h| format!("2026-06-10 {h}-04:00"));
        assert_eq!(shown_all(New_York, &retries), expected);
        // Opening between hours changes nothing: the last retry is still before 15:30.
        assert_eq!(credit_retry_times(New_York, at(New_York, "2026-06-10 10:30")), retries);
        // Half- and quarter-hour zones retry on their own hours, not UTC's.
        let kolkata = credit_retry_times(Kolkata, at(Kolkata, "2026-06-10 10:00"));
        let expected = ["05:30", "06:30", "07:30", "08:30", "09:30"].map(|h| utc(&format!("2026-06-10T{h}:00Z")));
        assert_eq!(kolkata, expected);
        let chatham = credit_retry_times(Chatham, at(Chatham, "2026-06-10 10:00"));
        assert_eq!(chatham.first(), Some(&utc("2026-06-09T22:15:00Z")));
        assert_eq!(chatham.len(), 5);
    }

    #[test]
    fn credit_retries_follow_the_local_clock_on_dst_days() {
        // A 10:00 window's retries keep their local hours, an hour earlier in UTC than the day before.
        let before = credit_retry_times(New_York, at(New_York, "2026-03-07 10:00"));
        let after = credit_retry_times(New_York, at(New_York, "2026-03-08 10:00"));
        assert_eq!(before.first(), Some(&utc("2026-03-07T16:00:00Z")));
        assert_eq!(after.first(), Some(&utc("2026-03-08T15:00:00Z")));
        assert_eq!(shown_all(New_York, &after)[4], "2026-03-08 15:00-04:00");
        // Across the change itself the retries stay an hour apart; the skipped 02:00 has none and
        // the repeated 01:00 has two.
        let spring = credit_retry_times(New_York, at(New_York, "2026-03-08 00:30"));
        let expected = ["01:00-05:00", "03:00-04:00", "04:00-04:00", "05:00-04:00", "06:00-04:00"];
        assert_eq!(shown_all(New_York, &spring), expected.map(|h| format!("2026-03-08 {h}")));
        let autumn = credit_retry_times(New_York, at(New_York, "2026-11-01 00:30"));
        let expected = ["01:00-04:00", "01:00-05:00", "02:00-05:00", "03:00-05:00", "04:00-05:00"];
        assert_eq!(shown_all(New_York, &autumn), expected.map(|h| format!("2026-11-01 {h}")));
        let sydney = credit_retry_times(Sydney, at(Sydney, "2026-04-05 00:30"));
        let expected = ["01:00+11:00", "02:00+11:00", "02:00+10:00", "03:00+10:00", "04:00+10:00"];
        assert_eq!(shown_all(Sydney, &sydney), expected.map(|h| format!("2026-04-05 {h}")));
        // Lord Howe skips 02:00–02:30: no retry reads 02:00 that night.
        let lord_howe = credit_retry_times(Lord_Howe, at(Lord_Howe, "2026-10-04 01:00"));
        let expected = ["03:00+11:00", "04:00+11:00", "05:00+11:00", "06:00+11:00"];
        assert_eq!(shown_all(Lord_Howe, &lord_howe), expected.map(|h| format!("2026-10-04 {h}")));
        for times in [spring, autumn, sydney, lord_howe] {
            assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::hours(1)));
        }
    }

    #[test]
    fn the_next_credit_retry_is_strictly_after_now() {
        let opened = at(New_York, "2026-06-10 10:00");
        let next = |local: &str| next_credit_retry(New_York, opened, at(New_York, &format!("2026-06-10 {local}")));
        assert_eq!(next("09:00"), Some(at(New_York, "2026-06-10 11:00")));
        assert_eq!(next("10:00"), Some(at(New_York, "2026-06-10 11:00")));
        assert_eq!(next("10:59"), Some(at(New_York, "2026-06-10 11:00")));
        assert_eq!(next("11:00"), Some(at(New_York, "2026-06-10 12:00")));
        assert_eq!(next("14:59"), Some(at(New_York, "2026-06-10 15:00")));
        assert_eq!(next("15:00"), None);
    }

    #[test]
    fn a_credit_retry_is_due_only_in_the_minute_it_starts() {
        let opened = at(New_York, "2026-06-10 10:00");
        let due = |t: DateTime<Utc>| credit_retry_due(New_York, opened, t);
        let eleven = at(New_York, "2026-06-10 11:00");
        assert!(due(eleven));
        assert!(due(eleven + TimeDelta::seconds(59)));
        assert!(!due(eleven + TICK));
        assert!(!due(eleven - TimeDelta::seconds(1)));
        assert!(!due(opened));
        assert!(due(at(New_York, "2026-06-10 15:00")));
        assert!(!due(at(New_York, "2026-06-10 16:00")));
        // A scheduler ticking every minute, at any second, retries exactly five times.
        for offset in [0, 17, 59] {
            let start = opened + TimeDelta::seconds(offset);
            let ticks = (0..8 * 60).map(|m| start + TimeDelta::minutes(m));
            assert_eq!(ticks.filter(|t| due(*t)).count(), 5, "ticks at :{offset}");
        }
    }

    #[test]
    fn quiet_hours_that_wrap_midnight_hold_until_the_morning() {
        let q = quiet("20:00", "08:00");
        assert!(q.wraps_midnight());
        let holds = |local: &str| q.holds(New_York, at(New_York, local));
        let morning = Some(at(New_York, "2026-06-11 08:00"));
        assert_eq!(holds("2026-06-10 19:59"), None);
        assert_eq!(holds("2026-06-10 20:00"), morning);
        assert_eq!(holds("2026-06-10 23:59"), morning);
        assert_eq!(holds("2026-06-11 00:00"), morning);
        assert_eq!(holds("2026-06-11 07:59"), morning);
        assert_eq!(holds("2026-06-11 08:00"), None);
        assert_eq!(holds("2026-06-11 12:00"), None);
        let lunch = quiet("12:00", "13:00");
        assert!(!lunch.wraps_midnight());
        assert_eq!(lunch.holds(Kolkata, at(Kolkata, "2026-06-11 12:30")), Some(utc("2026-06-11T07:30:00Z")));
        assert_eq!(lunch.holds(Kolkata, at(Kolkata, "2026-06-11 13:00")), None);
        assert_eq!(lunch.holds(Kolkata, at(Kolkata, "2026-06-11 11:59")), None);
    }

    #[test]
    fn quiet_nights_are_an_hour_shorter_or_longer_across_dst_changes() {
        let q = quiet("20:00", "08:00");
        let cases = [
            (New_York, "2026-03-07 20:00", "2026-03-08 08:00-04:00", 11.0),
            (New_York, "2026-10-31 20:00", "2026-11-01 08:00-05:00", 13.0),
            (Sydney, "2026-04-04 20:00", "2026-04-05 08:00+10:00", 13.0),
            (Sydney, "2026-10-03 20:00", "2026-10-04 08:00+11:00", 11.0),
            (Lord_Howe, "2026-10-03 20:00", "2026-10-04 08:00+11:00", 11.5),
        ];
        for (tz, begins, ends, length) in cases {
            let begins = at(tz, begins);
            let Some(until) = q.holds(tz, begins) else { panic!("{tz}: quiet from {begins}") };
            assert_eq!((shown(tz, until), until - begins), (ends.to_owned(), hours(length)), "{tz}");
            assert_eq!(q.holds(tz, until - TimeDelta::seconds(1)), Some(until), "{tz}");
            assert_eq!(q.holds(tz, until), None, "{tz}");
        }
    }

    #[test]
    fn quiet_hours_the_clock_skips_hold_nothing_that_night() {
        let q = quiet("02:00", "02:45");
        let minutes_held = |day: &str| {
            let (start, end) = local_day_bounds(New_York, date(day));
            let ticks = (0..).map(|m| start + TimeDelta::minutes(m)).take_while(|t| *t < end);
            ticks.filter(|t| q.holds(New_York, *t).is_some()).count()
        };
        assert_eq!(minutes_held("2026-03-08"), 0);
        assert_eq!(minutes_held("2026-03-09"), 45);
        // Starting in the gap, they begin when it ends.
        let q = quiet("02:30", "04:00");
        assert_eq!(q.holds(New_York, at(New_York, "2026-03-08 01:59")), None);
        assert_eq!(q.holds(New_York, utc("2026-03-08T07:00:00Z")), Some(at(New_York, "2026-03-08 04:00")));
    }

    #[test]
    fn quiet_hours_are_never_empty_and_read_and_write_as_hh_mm() {
        assert_eq!(QuietHours::new(hm("08:00"), hm("08:00")), Err(WindowError::EmptyQuietHours(hm("08:00"))));
        let q = quiet("20:00", "08:00");
        assert_eq!((q.start(), q.end()), (hm("20:00"), hm("08:00")));
        assert_eq!(serde_json::to_value(q).ok(), Some(json!({"start": "20:00", "end": "08:00"})));
        let read: Result<QuietHours, _> = serde_json::from_value(json!({"start": "20:00", "end": "08:00"}));
        assert_eq!(read.ok(), Some(q));
        assert!(serde_json::from_value::<QuietHours>(json!({"start": "20:00", "end": "20:00"})).is_err());
        assert!(serde_json::from_value::<QuietHours>(json!({"start": "8pm", "end": "08:00"})).is_err());
    }
}

/// The windows are written as `{"start": "HH:MM", "end": "HH:MM", …}`: their schemas are those
/// of the forms they are read from.
#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::{RefOr, schema::Schema};
    use utoipa::{PartialSchema, ToSchema};

    impl PartialSchema for super::ReminderWindow {
        fn schema() -> RefOr<Schema> {
            super::WindowRepr::schema()
        }
    }

    impl ToSchema for super::ReminderWindow {}

    impl PartialSchema for super::QuietHours {
        fn schema() -> RefOr<Schema> {
            super::QuietRepr::schema()
        }
    }

    impl ToSchema for super::QuietHours {}
}
