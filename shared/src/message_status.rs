//! The message state machine: every status a text can be in, and which moves are allowed.
//!
//! ```text
//! awaiting_approval → queued | scheduled | expired | cancelled | skipped
//! scheduled         → queued | cancelled | skipped
//! queued            → sending | deferred | failed | skipped
//! deferred          → queued
//! sending           → submitted | failed | skipped (checks just before the Twilio call)
//!                     | queued (released for a retry Twilio never saw)
//!                     | sent | delivered | undelivered (a callback that beat the sender's own write)
//! submitted         → sent | delivered | undelivered | failed
//! sent              → delivered | undelivered | failed
//! failed, undelivered → queued (resend: a new attempt)
//! ```
//! Callbacks arrive out of order and twice, so the delivery path only moves forward along
//! `queued < sending < submitted < sent < delivered`; a late `sent` never overwrites `delivered`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    AwaitingApproval,
    Scheduled,
    Queued,
    Deferred,
    Sending,
    Submitted,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Skipped,
    Expired,
    Cancelled,
    Received,
}

use MessageStatus::*;

impl MessageStatus {
    pub const ALL: [MessageStatus; 14] = [
        AwaitingApproval,
        Scheduled,
        Queued,
        Deferred,
        Sending,
        Submitted,
        Sent,
        Delivered,
        Undelivered,
        Failed,
        Skipped,
        Expired,
        Cancelled,
        Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AwaitingApproval => "awaiting_approval",
            Scheduled => "scheduled",
            Queued => "queued",
            Deferred => "deferred",
            Sending => "sending",
            Submitted => "submitted",
            Sent => "sent",
            Delivered => "delivered",
            Undelivered => "undelivered",
            Failed => "failed",
            Skipped => "skipped",
            Expired => "expired",
            Cancelled => "cancelled",
            Received => "received",
        }
    }

    /// Whether a message may move from `self` to `to`.
    pub fn can_become(self, to: MessageStatus) -> bool {
        match self {
            AwaitingApproval => matches!(to, Queued | Scheduled | Expired | Cancelled | Skipped),
            Scheduled => matches!(to, Queued | Cancelled | Skipped),
            Queued => matches!(to, Sending | Deferred | Failed | Skipped),
            Deferred => matches!(to, Queued),
            Sending => matches!(to, Submitted | Failed | Skipped | Queued | Sent | Delivered | Undelivered),
            Submitted => matches!(to, Sent | Delivered | Undelivered | Failed),
            Sent => matches!(to, Delivered | Undelivered | Failed),
            Failed | Undelivered => matches!(to, Queued),
            Delivered | Skipped | Expired | Cancelled | Received => false,
        }
    }

    /// Final for the current attempt: nothing but a resend moves it on.
    pub fn is_final(self) -> bool {
        matches!(self, Delivered | Undelivered | Failed | Skipped | Expired | Cancelled | Received)
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out once more so a change to `can_become` must be deliberate.
    const ALLOWED: &[(MessageStatus, MessageStatus)] = &[
        (AwaitingApproval, Queued),
        (AwaitingApproval, Scheduled),
        (AwaitingApproval, Expired),
        (AwaitingApproval, Cancelled),
        (AwaitingApproval, Skipped),
        (Scheduled, Queued),
        (Scheduled, Cancelled),
        (Scheduled, Skipped),
        (Queued, Sending),
        (Queued, Deferred),
        (Queued, Failed),
        (Queued, Skipped),
        (Deferred, Queued),
        (Sending, Submitted),
        (Sending, Failed),
        (Sending, Skipped),
        (Sending, Queued),
        (Sending, Sent),
        (Sending, Delivered),
        (Sending, Undelivered),
        (Submitted, Sent),
        (Submitted, Delivered),
        (Submitted, Undelivered),
        (Submitted, Failed),
        (Sent, Delivered),
        (Sent, Undelivered),
        (Sent, Failed),
        (Failed, Queued),
        (Undelivered, Queued),
    ];

    #[test]
    fn every_pair_is_allowed_or_refused_as_the_table_says() {
        for from in MessageStatus::ALL {
            for to in MessageStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn delivery_never_regresses() {
        assert!(!Delivered.can_become(Sent));
        assert!(!Delivered.can_become(Submitted));
        assert!(!Sent.can_become(Submitted));
        assert!(!Submitted.can_become(Sending));
        assert!(!Sent.can_become(Sent));
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = MessageStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Delivered, Undelivered, Failed, Skipped, Expired, Cancelled, Received]);
    }

    #[test]
    fn serialises_in_snake_case() {
        assert_eq!(serde_json::to_string(&AwaitingApproval).ok().as_deref(), Some("\"awaiting_approval\""));
        for s in MessageStatus::ALL {
            assert_eq!(serde_json::to_string(&s).ok(), Some(format!("\"{}\"", s.as_str())));
        }
    }
}
