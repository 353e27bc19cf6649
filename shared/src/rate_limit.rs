//! Pacing submissions to Twilio at or below each connection's throughput (MPS, in segments per
//! second), shared by every concurrent sender through one counter item per connection and window.
//!
//! - At most MPS segments in any aligned second (no carry-over between seconds).
//! - Lane shares: interactive may use everything; scheduled at most 70%, bulk at most 50%, and
//!   the two together at most 80%, so a fifth of every second stays free for conversations. Each
//!   share holds in every second (rounded down, at least one segment) and over each aligned
//!   10-second window. The window is what keeps the shares at low MPS, where a share of one second
//!   rounds to a whole segment: at 2 MPS bulk may fill a second, but not more than 10 of 20
//!   segments in ten seconds.
//! - A message of more segments than the MPS goes out alone in an otherwise empty second.
//! - Where the shared lanes may fill a whole second (1 MPS), they never take two seconds side by
//!   side within a window, so a conversation text finds a free second at most a second away
//!   instead of waiting behind a run of reminders or alert texts.

use serde::{Deserialize, Serialize};

use crate::message::Lane;

/// Seconds in one share window.
pub const WINDOW_SECS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shares {
    pub scheduled: f64,
    pub bulk: f64,
    pub scheduled_and_bulk: f64,
}

impl Default for Shares {
    fn default() -> Self {
        Self { scheduled: 0.7, bulk: 0.5, scheduled_and_bulk: 0.8 }
    }
}

/// What each lane may take of a window or of one second, in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneCaps {
    pub scheduled: u32,
    pub bulk: u32,
    pub scheduled_and_bulk: u32,
}

impl LaneCaps {
    fn of(budget: u32, shares: Shares) -> Self {
        // At least one segment, so a lane is slow at worst, never stopped.
        let share = |s: f64| ((f64::from(budget) * s.clamp(0.0, 1.0)).floor() as u32).max(1);
        Self {
            scheduled: share(shares.scheduled),
            bulk: share(shares.bulk),
            scheduled_and_bulk: share(shares.scheduled_and_bulk),
        }
    }

    /// The cap for a shared lane (interactive has none).
    pub fn lane(&self, lane: Lane) -> Option<u32> {
        match lane {
            Lane::Interactive => None,
            Lane::Scheduled => Some(self.scheduled),
            Lane::Bulk => Some(self.bulk),
        }
    }

    fn room(&self, used: &LaneUse, lane: Lane, segments: u32) -> bool {
        let Some(cap) = self.lane(lane) else {
            return true;
        };
        used.shared() + segments <= self.scheduled_and_bulk && used.lane(lane) + segments <= cap
    }
}

/// Segments allowed per second, and the shared lanes' caps per window and per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_second: u32,
    pub window: LaneCaps,
    pub second: LaneCaps,
}

pub fn limits(mps: u32, shares: Shares) -> Limits {
    let per_second = mps.max(1);
    Limits {
        per_second,
        window: LaneCaps::of(per_second * WINDOW_SECS as u32, shares),
        second: LaneCaps::of(per_second, shares),
    }
}

/// What the shared lanes have been granted, in a window or in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneUse {
    pub scheduled: u32,
    pub bulk: u32,
}

impl LaneUse {
    pub fn shared(&self) -> u32 {
        self.scheduled + self.bulk
    }

    pub fn lane(&self, lane: Lane) -> u32 {
        match lane {
            Lane::Interactive => 0,
            Lane::Scheduled => self.scheduled,
            Lane::Bulk => self.bulk,
        }
    }
}

/// What one window has granted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowUsage {
    /// Every lane's segments, per second.
    pub per_second: [u32; WINDOW_SECS],
    /// The shared lanes' segments over the window.
    pub lanes: LaneUse,
    /// The shared lanes' segments, per second.
    pub lanes_per_second: [LaneUse; WINDOW_SECS],
}

impl WindowUsage {
    /// Every lane's segments over the window.
    pub fn granted(&self) -> u32 {
        self.per_second.iter().sum()
    }

    /// Counts `segments` of `lane` as granted in `second`.
    pub fn take(&mut self, lane: Lane, segments: u32, second: usize) {
        self.per_second[second] += segments;
        let (window, this_second) = (&mut self.lanes, &mut self.lanes_per_second[second]);
        for used in [window, this_second] {
            match lane {
                Lane::Interactive => {}
                Lane::Scheduled => used.scheduled += segments,
                Lane::Bulk => used.bulk += segments,
            }
        }
    }
}

/// Whether the lane's share of this window still has room for `segments`.
pub fn lane_has_room(usage: &WindowUsage, limits: &Limits, lane: Lane, segments: u32) -> bool {
    limits.window.room(&usage.lanes, lane, segments)
}

/// Whether a second that has granted `used` segments can take `segments` more.
pub fn second_has_room(used: u32, limits: &Limits, segments: u32) -> bool {
    if segments > limits.per_second {
        return used == 0;
    }
    used + segments <= limits.per_second
}

/// Whether the shared lanes' share of a second is the whole second (at 1 MPS): then they take
/// every other second at most, leaving the ones between to conversations.
pub fn shared_lanes_alternate(limits: &Limits) -> bool {
    limits.second.scheduled_and_bulk >= limits.per_second
}

/// The seconds beside `second` within its window.
pub fn neighbours(second: usize) -> impl Iterator<Item = usize> {
    [second.checked_sub(1), Some(second + 1).filter(|s| *s < WINDOW_SECS)].into_iter().flatten()
}

/// Whether second `second` of the window can take `segments` more for `lane`: room in the
/// second, and in the lane's share of that second. A message longer than a second's share goes
/// out in a second where its lane has sent nothing yet.
fn fits_in_second(usage: &WindowUsage, limits: &Limits, lane: Lane, segments: u32, second: usize) -> bool {
    if !second_has_room(usage.per_second[second], limits, segments) {
        return false;
    }
    let used = &usage.lanes_per_second[second];
    let shared_beside = || neighbours(second).any(|n| usage.lanes_per_second[n].shared() > 0);
    match limits.second.lane(lane) {
        None => true,
        Some(_) if shared_lanes_alternate(limits) && shared_beside() => false,
        Some(cap) if segments > cap.min(limits.second.scheduled_and_bulk) => used.shared() == 0,
        Some(_) => limits.second.room(used, lane, segments),
    }
}

/// The first second of the window, at or after `from`, where the message fits; `None` when the
/// window has no room for it.
pub fn first_fit(usage: &WindowUsage, limits: &Limits, lane: Lane, segments: u32, from: usize) -> Option<usize> {
    nth_fit(usage, limits, lane, segments, from, 0).ok()
}

/// Where the message goes if `skip` texts of its lane and length go first: the second, at or
/// after `from`, of the window's free place number `skip` (from 0), counting a second once for
/// every such text it still takes. `Err(places)` when the window has no more than `skip` places
/// for it: how many it has.
///
/// Senders refused the same second spread out this way instead of all asking for the next one
/// (where all but one are refused again). Any second returned also fits `usage` as it is: the
/// places before it are only counted as taken, and taking room never makes a second fit.
pub fn nth_fit(
    usage: &WindowUsage,
    limits: &Limits,
    lane: Lane,
    segments: u32,
    from: usize,
    skip: u32,
) -> Result<usize, u32> {
    let mut usage = *usage;
    let mut places = 0;
    for second in from..WINDOW_SECS {
        while lane_has_room(&usage, limits, lane, segments) && fits_in_second(&usage, limits, lane, segments, second) {
            if places == skip {
                return Ok(second);
            }
            places += 1;
            usage.take(lane, segments, second);
        }
    }
    Err(places)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mps: u32) -> Limits {
        limits(mps, Shares::default())
    }

    #[test]
    fn shares_hold_per_ten_second_window_and_per_second() {
        let l = at(10);
        assert_eq!(l.window, LaneCaps { scheduled: 70, bulk: 50, scheduled_and_bulk: 80 });
        assert_eq!(l.second, LaneCaps { scheduled: 7, bulk: 5, scheduled_and_bulk: 8 });
        let l = at(1);
        assert_eq!(l.window, LaneCaps { scheduled: 7, bulk: 5, scheduled_and_bulk: 8 });
        assert_eq!(l.second, LaneCaps { scheduled: 1, bulk: 1, scheduled_and_bulk: 1 }, "never zero");
    }

    #[test]
    fn a_second_never_grants_more_than_the_mps() {
        let l = at(10);
        assert!(second_has_room(8, &l, 2));
        assert!(!second_has_room(9, &l, 2));
        // A long message alone in an empty second, never beside others.
        assert!(second_has_room(0, &at(1), 3));
        assert!(!second_has_room(1, &at(1), 3));
    }

    #[test]
    fn interactive_may_use_what_the_shared_lanes_may_not() {
        let l = at(10);
        let mut usage = WindowUsage {
            per_second: [8; WINDOW_SECS],
            lanes: LaneUse { scheduled: 50, bulk: 30 },
            ..WindowUsage::default()
        };
        assert!(!lane_has_room(&usage, &l, Lane::Scheduled, 1), "scheduled + bulk at 80%");
        assert!(!lane_has_room(&usage, &l, Lane::Bulk, 1));
        assert!(lane_has_room(&usage, &l, Lane::Interactive, 1));
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 2, 3), Some(3));
        usage.lanes_per_second = [LaneUse { scheduled: 4, bulk: 4 }; WINDOW_SECS];
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 2, 3), Some(3), "the shared lanes' seconds are full");
    }

    #[test]
    fn each_shared_lane_has_its_own_cap_per_window() {
        let l = at(10);
        let bulk_full = WindowUsage { lanes: LaneUse { bulk: 50, scheduled: 0 }, ..WindowUsage::default() };
        assert!(!lane_has_room(&bulk_full, &l, Lane::Bulk, 1));
        assert!(lane_has_room(&bulk_full, &l, Lane::Scheduled, 20));
        assert!(!lane_has_room(&bulk_full, &l, Lane::Scheduled, 31), "together at most 80");
        let scheduled_full = WindowUsage { lanes: LaneUse { scheduled: 70, bulk: 0 }, ..WindowUsage::default() };
        assert!(!lane_has_room(&scheduled_full, &l, Lane::Scheduled, 1));
        assert!(lane_has_room(&scheduled_full, &l, Lane::Bulk, 10));
        assert!(!lane_has_room(&scheduled_full, &l, Lane::Bulk, 11));
    }

    #[test]
    fn a_fifth_of_every_second_stays_free_for_conversations() {
        let l = at(20);
        let mut usage = WindowUsage::default();
        // Bulk alone: ten of twenty in a second, then the next second.
        usage.per_second[0] = 10;
        usage.lanes_per_second[0] = LaneUse { scheduled: 0, bulk: 10 };
        assert_eq!(first_fit(&usage, &l, Lane::Bulk, 1, 0), Some(1));
        assert_eq!(first_fit(&usage, &l, Lane::Scheduled, 6, 0), Some(0), "scheduled has six of sixteen left");
        assert_eq!(first_fit(&usage, &l, Lane::Scheduled, 7, 0), Some(1));
        // Both shared lanes at their joint 80%: only interactive fits in the second.
        usage.per_second[0] = 16;
        usage.lanes_per_second[0] = LaneUse { scheduled: 6, bulk: 10 };
        assert_eq!(first_fit(&usage, &l, Lane::Scheduled, 1, 0), Some(1));
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 4, 0), Some(0));
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 5, 0), Some(1));
    }

    #[test]
    fn a_shared_text_longer_than_its_share_of_a_second_goes_where_its_lanes_sent_nothing() {
        let l = at(10);
        let mut usage = WindowUsage::default();
        usage.per_second[0] = 1;
        usage.lanes_per_second[0] = LaneUse { scheduled: 1, bulk: 0 };
        usage.per_second[1] = 2;
        assert_eq!(first_fit(&usage, &l, Lane::Bulk, 6, 0), Some(1), "bulk's share of a second is 5");
    }

    #[test]
    fn at_one_mps_the_shared_lanes_take_every_other_second_at_most() {
        let l = at(1);
        assert!(shared_lanes_alternate(&l));
        assert!(!shared_lanes_alternate(&at(2)), "at 2 MPS a fifth of every second is free anyway");
        let mut usage = WindowUsage::default();
        let mut granted = Vec::new();
        while let Some(second) = first_fit(&usage, &l, Lane::Bulk, 1, 0) {
            usage.take(Lane::Bulk, 1, second);
            granted.push(second);
        }
        assert_eq!(granted, [0, 2, 4, 6, 8], "five of ten, none side by side");
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 1, 0), Some(1), "a conversation text goes between");
        assert_eq!(first_fit(&usage, &l, Lane::Scheduled, 1, 0), None, "no second left beside nothing shared");
    }

    #[test]
    fn the_nth_free_place_counts_each_second_once_for_every_text_it_still_takes() {
        let l = at(3);
        let mut usage = WindowUsage::default();
        usage.per_second[4] = 2;
        // Second 4 has one place left, second 5 three.
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 1, 4, 0), Ok(4));
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 1, 4, 1), Ok(5));
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 1, 4, 3), Ok(5));
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 1, 4, 4), Ok(6));
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 2, 4, 0), Ok(5), "two segments need two places");
        assert_eq!(nth_fit(&usage, &l, Lane::Interactive, 1, 9, 3), Err(3), "the window's last second has three");
    }

    #[test]
    fn the_nth_free_place_keeps_the_shares_and_fits_the_window_as_it_is() {
        // At 1 MPS bulk takes every other second, five in a window: skipping counts that too.
        let l = at(1);
        let usage = WindowUsage::default();
        let places: Vec<_> = (0..6).map(|skip| nth_fit(&usage, &l, Lane::Bulk, 1, 0, skip)).collect();
        assert_eq!(places, [Ok(0), Ok(2), Ok(4), Ok(6), Ok(8), Err(5)]);
        for skip in 0..5 {
            let second = nth_fit(&usage, &l, Lane::Bulk, 1, 0, skip).expect("a place");
            assert!(fits_in_second(&usage, &l, Lane::Bulk, 1, second), "second {second} fits as the window is");
        }
        // At 10 MPS bulk's window share is 50: ten places left, two seconds' worth at five a second.
        let l = at(10);
        let mut usage = WindowUsage::default();
        usage.lanes.bulk = 40;
        assert_eq!(nth_fit(&usage, &l, Lane::Bulk, 1, 0, 9), Ok(1));
        assert_eq!(nth_fit(&usage, &l, Lane::Bulk, 1, 0, 10), Err(10));
    }

    #[test]
    fn first_fit_starts_at_the_current_second_and_skips_full_ones() {
        let l = at(2);
        let mut usage = WindowUsage::default();
        usage.per_second[4] = 2;
        usage.per_second[5] = 1;
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 1, 4), Some(5));
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 2, 4), Some(6));
        usage.per_second = [2; WINDOW_SECS];
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 1, 0), None);
    }
}
