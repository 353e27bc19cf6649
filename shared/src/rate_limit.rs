//! Pacing submissions to Twilio at or below each connection's throughput (MPS, in segments per
//! second), shared by every concurrent sender through one counter item per connection and window.
//!
//! - At most MPS segments in any aligned second (no carry-over between seconds).
//! - Lane shares, counted over aligned 10-second windows so they also work at 1 MPS: interactive
//!   may use everything; scheduled at most 70%, bulk at most 50%, and the two together at most 80%,
//!   so a fifth of the throughput always stays free for conversations.
//! - A message of more segments than the MPS goes out alone in an otherwise empty second.

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

/// Segments allowed per second, and per window for the shared lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_second: u32,
    pub scheduled: u32,
    pub bulk: u32,
    pub scheduled_and_bulk: u32,
}

pub fn limits(mps: u32, shares: Shares) -> Limits {
    let per_window = f64::from(mps.max(1)) * WINDOW_SECS as f64;
    // At least one segment per window, so a lane is slow at worst, never stopped.
    let share = |s: f64| ((per_window * s.clamp(0.0, 1.0)).floor() as u32).max(1);
    Limits {
        per_second: mps.max(1),
        scheduled: share(shares.scheduled),
        bulk: share(shares.bulk),
        scheduled_and_bulk: share(shares.scheduled_and_bulk),
    }
}

/// What one window has granted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowUsage {
    pub per_second: [u32; WINDOW_SECS],
    pub scheduled: u32,
    pub bulk: u32,
}

impl WindowUsage {
    pub fn scheduled_and_bulk(&self) -> u32 {
        self.scheduled + self.bulk
    }
}

/// Whether the lane's share of this window still has room for `segments`.
pub fn lane_has_room(usage: &WindowUsage, limits: &Limits, lane: Lane, segments: u32) -> bool {
    let shared = usage.scheduled_and_bulk() + segments <= limits.scheduled_and_bulk;
    match lane {
        Lane::Interactive => true,
        Lane::Scheduled => shared && usage.scheduled + segments <= limits.scheduled,
        Lane::Bulk => shared && usage.bulk + segments <= limits.bulk,
    }
}

/// Whether a second that has granted `used` segments can take `segments` more.
pub fn second_has_room(used: u32, limits: &Limits, segments: u32) -> bool {
    if segments > limits.per_second {
        return used == 0;
    }
    used + segments <= limits.per_second
}

/// The first second of the window, at or after `from`, where the message fits; `None` when the
/// window has no room for it.
pub fn first_fit(usage: &WindowUsage, limits: &Limits, lane: Lane, segments: u32, from: usize) -> Option<usize> {
    if !lane_has_room(usage, limits, lane, segments) {
        return None;
    }
    (from..WINDOW_SECS).find(|&s| second_has_room(usage.per_second[s], limits, segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mps: u32) -> Limits {
        limits(mps, Shares::default())
    }

    #[test]
    fn shares_are_counted_per_ten_second_window() {
        assert_eq!(at(10), Limits { per_second: 10, scheduled: 70, bulk: 50, scheduled_and_bulk: 80 });
        assert_eq!(at(1), Limits { per_second: 1, scheduled: 7, bulk: 5, scheduled_and_bulk: 8 });
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
        let usage = WindowUsage { per_second: [8; WINDOW_SECS], scheduled: 50, bulk: 30 };
        assert!(!lane_has_room(&usage, &l, Lane::Scheduled, 1), "scheduled + bulk at 80%");
        assert!(!lane_has_room(&usage, &l, Lane::Bulk, 1));
        assert!(lane_has_room(&usage, &l, Lane::Interactive, 1));
        assert_eq!(first_fit(&usage, &l, Lane::Interactive, 2, 3), Some(3));
    }

    #[test]
    fn each_shared_lane_has_its_own_cap() {
        let l = at(10);
        let bulk_full = WindowUsage { bulk: 50, ..WindowUsage::default() };
        assert!(!lane_has_room(&bulk_full, &l, Lane::Bulk, 1));
        assert!(lane_has_room(&bulk_full, &l, Lane::Scheduled, 20));
        assert!(!lane_has_room(&bulk_full, &l, Lane::Scheduled, 31), "together at most 80");
        let scheduled_full = WindowUsage { scheduled: 70, ..WindowUsage::default() };
        assert!(!lane_has_room(&scheduled_full, &l, Lane::Scheduled, 1));
        assert!(lane_has_room(&scheduled_full, &l, Lane::Bulk, 10));
        assert!(!lane_has_room(&scheduled_full, &l, Lane::Bulk, 11));
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
