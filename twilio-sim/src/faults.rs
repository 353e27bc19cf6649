//! Faults injected into create-message requests, so clients can be tested against what Twilio
//! and the network do on a bad day: throttling, 5xx answers (with or without the message
//! created), answers slower than the client's timeout, connections dropped before any answer,
//! and full sender queues.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::state::lock;

/// What an injected fault does to a create-message request. In JSON (`POST /sim/faults`) a
/// fault is tagged by `kind`: `{"kind": "throttle", "retry_after_secs": 2}`,
/// `{"kind": "server_error_not_created"}`, `{"kind": "slow", "delay_ms": 5000, "created": true}`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// `429` with Twilio's code 20429 (account concurrency limit), and `Retry-After: n` when
    /// `retry_after_secs` is set (Twilio's Messages API does not document the header, so `None`
    /// sends none). Nothing is created: Twilio says such a request "is never processed".
    Throttle {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// `500` (code 20500); nothing is created.
    ServerErrorNotCreated,
    /// The message is created and plays out its outcome, callbacks included, but the answer is
    /// a `500` (code 20500): the ambiguous case where a blind retry sends twice.
    ServerErrorCreated,
    /// The answer comes only after `delay_ms` (make it longer than the client's timeout). With
    /// `created` the message is created at once and the late answer is its `201`; without, nothing
    /// is created and the late answer is a `503` (code 20503).
    Slow { delay_ms: u64, created: bool },
    /// The request is read in full, then the connection is closed with no response at all (the
    /// client sees a closed connection, not a status). With `created` the message is created first.
    DropAfterRead { created: bool },
    /// `400` with code 21611: the sender's queue is full. Nothing is created.
    QueueFull,
}

impl Fault {
    /// The fault's `kind` in JSON, also what [`crate::RecordedRequest::fault`] holds.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Throttle { .. } => "throttle",
            Self::ServerErrorNotCreated => "server_error_not_created",
            Self::ServerErrorCreated => "server_error_created",
            Self::Slow { .. } => "slow",
            Self::DropAfterRead { .. } => "drop_after_read",
            Self::QueueFull => "queue_full",
        }
    }
}

/// Which create requests a fault applies to. The default, every create request until
/// [`crate::Simulator::clear_faults`], is what a plan with no limits means.
///
/// - `to`: only requests whose `To` field is exactly this;
/// - `times`: the fault is injected at most this many times, then the plan is spent;
/// - `probability`: each matching request gets the fault with this chance (0.0 to 1.0), drawn
///   from an RNG seeded with `seed` if given (the same seed and requests give the same faults
///   on every run), from a random seed otherwise. A request the draw spares is not counted
///   against `times`.
///
/// In JSON (`POST /sim/faults`) every field is optional: `{"times": 1, "to": "+1…"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    pub times: Option<u32>,
    pub probability: Option<f64>,
    pub seed: Option<u64>,
    pub to: Option<String>,
}

impl FaultPlan {
    /// Every create request, until cleared.
    pub fn always() -> Self {
        Self::default()
    }

    /// The next `times` create requests.
    pub fn next(times: u32) -> Self {
        Self { times: Some(times), ..Self::default() }
    }

    /// Each create request with chance `probability`, drawn from an RNG seeded with `seed`.
    pub fn seeded_chance(probability: f64, seed: u64) -> Self {
        Self { probability: Some(probability), seed: Some(seed), ..Self::default() }
    }

    /// The same plan, for requests to `to` only.
    pub fn only_to(self, to: impl Into<String>) -> Self {
        Self { to: Some(to.into()), ..self }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        match self.probability {
            Some(p) if !(0.0..=1.0).contains(&p) => Err(format!("probability {p} is not between 0 and 1")),
            _ => Ok(()),
        }
    }
}

/// A plan in force, with its own RNG and what is left of `times`.
#[derive(Debug)]
struct Active {
    fault: Fault,
    to: Option<String>,
    remaining: Option<u32>,
    probability: Option<f64>,
    rng: StdRng,
}

/// The plans in force, in the order they were injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    plans: Mutex<Vec<Active>>,
}

impl Faults {
    pub fn inject(&self, fault: Fault, plan: FaultPlan) -> Result<(), String> {
        plan.check()?;
        if plan.times == Some(0) {
            return Ok(());
        }
        let rng = match plan.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        let active = Active { fault, to: plan.to, remaining: plan.times, probability: plan.probability, rng };
        lock(&self.plans).push(active);
        Ok(())
    }

    pub fn clear(&self) {
        lock(&self.plans).clear();
    }

    /// The fault for a create request to `to`, if any: the first plan that matches and whose
    /// draw (if it has a probability) comes up. Spent plans are dropped.
    pub fn pick(&self, to: Option<&str>) -> Option<Fault> {
        let mut plans = lock(&self.plans);
        let index = plans.iter_mut().position(|plan| {
            plan.remaining != Some(0)
                && plan.to.as_deref().is_none_or(|only| Some(only) == to)
                && plan.probability.is_none_or(|p| plan.rng.random_bool(p))
        })?;
        let plan = &mut plans[index];
        let fault = plan.fault;
        if let Some(remaining) = &mut plan.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                plans.remove(index);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(faults: &Faults, to: &str, n: usize) -> Vec<Option<&'static str>> {
        (0..n).map(|_| faults.pick(Some(to)).map(|f| f.name())).collect()
    }

    #[test]
    fn times_counts_down_then_the_next_plan_applies() {
        let faults = Faults::default();
        faults.inject(Fault::QueueFull, FaultPlan::next(2)).unwrap();
        faults.inject(Fault::ServerErrorNotCreated, FaultPlan::next(1)).unwrap();
        assert_eq!(
            picks(&faults, "+15550000001", 4),
            [Some("queue_full"), Some("queue_full"), Some("server_error_not_created"), None]
        );
    }

    #[test]
    fn a_plan_for_one_recipient_leaves_others_alone() {
        let faults = Faults::default();
        faults.inject(Fault::ServerErrorCreated, FaultPlan::always().only_to("+15550000001")).unwrap();
        assert_eq!(faults.pick(Some("+15550000002")), None);
        assert_eq!(faults.pick(None), None);
        assert_eq!(faults.pick(Some("+15550000001")), Some(Fault::ServerErrorCreated));
        assert_eq!(faults.pick(Some("+15550000001")), Some(Fault::ServerErrorCreated));
        faults.clear();
        assert_eq!(faults.pick(Some("+15550000001")), None);
    }

    #[test]
    fn a_seeded_chance_repeats_and_times_caps_the_hits() {
        let run = || {
            let faults = Faults::default();
            faults.inject(Fault::QueueFull, FaultPlan::seeded_chance(0.5, 42)).unwrap();
            picks(&faults, "+15550000001", 64)
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|p| p.is_some()).count();
        assert!((10..=54).contains(&hits), "{hits} of 64");

        let faults = Faults::default();
        faults.inject(Fault::QueueFull, FaultPlan { times: Some(3), ..FaultPlan::seeded_chance(0.5, 42) }).unwrap();
        assert_eq!(picks(&faults, "+15550000001", 64).iter().filter(|p| p.is_some()).count(), 3);
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        let faults = Faults::default();
        assert!(faults.inject(Fault::QueueFull, FaultPlan { probability: Some(1.5), ..FaultPlan::default() }).is_err());
        assert!(
            faults.inject(Fault::QueueFull, FaultPlan { probability: Some(f64::NAN), ..FaultPlan::default() }).is_err()
        );
        assert_eq!(faults.pick(Some("+15550000001")), None);
    }

    #[test]
    fn faults_read_from_json() {
        let fault: Fault = serde_json::from_str(r#"{"kind": "slow", "delay_ms": 500, "created": true}"#).unwrap();
        assert_eq!(fault, Fault::Slow { delay_ms: 500, created: true });
        let fault: Fault = serde_json::from_str(r#"{"kind": "throttle"}"#).unwrap();
        assert_eq!(fault, Fault::Throttle { retry_after_secs: None });
        let plan: FaultPlan = serde_json::from_str(r#"{"times": 2, "to": "+15550000001"}"#).unwrap();
        assert_eq!(plan, FaultPlan::next(2).only_to("+15550000001"));
        assert!(serde_json::from_str::<FaultPlan>(r#"{"time": 2}"#).is_err());
    }
}
