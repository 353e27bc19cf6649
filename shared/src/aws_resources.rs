//! The AWS resources the code relies on: tables with their keys and indexes, the send lanes with
//! their dead-letter queues, the event bus and the reports bucket.
//!
//! `template.yaml` deploys these and the local stack creates them from this description; a test
//! reads `template.yaml` and proves the two agree, key for key and queue for queue.

/// A DynamoDB table. Every key attribute is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The template's logical id.
    pub logical_id: &'static str,
    /// Name suffix used by the local stack (`<prefix>-<suffix>`).
    pub suffix: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub indexes: &'static [IndexSpec],
    /// Attribute holding an epoch-seconds expiry, if items expire.
    pub ttl_attribute: Option<&'static str>,
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub projection: Projection,
}

/// Which attributes an index holds besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Every attribute: a query answers with whole items, and every write of an item in the
    /// index writes the index too.
    All,
    /// The table's and the index's keys only: a write that keeps the index keys as they were
    /// costs the index nothing; the items are read from the table.
    KeysOnly,
    /// The keys and these attributes: a write that changes neither costs the index nothing.
    Include(&'static [&'static str]),
}

impl Projection {
    /// CloudFormation's and DynamoDB's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Projection::All => "ALL",
            Projection::KeysOnly => "KEYS_ONLY",
            Projection::Include(_) => "INCLUDE",
        }
    }

    /// The attributes besides the keys, for `INCLUDE`.
    pub fn non_key_attributes(self) -> &'static [&'static str] {
        match self {
            Projection::Include(attributes) => attributes,
            Projection::All | Projection::KeysOnly => &[],
        }
    }
}

/// An SQS queue with its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: &'static str,
    pub dlq_logical_id: &'static str,
    pub suffix: &'static str,
    /// At least six times the consuming function's timeout (Lambda's guidance for SQS sources).
    pub visibility_timeout_secs: u32,
    /// Receives before SQS moves a message to the DLQ. Every wait (rate-limit slot, quiet hours,
    /// back-off) is a receive; attempts are counted in DynamoDB (`retry_policy::MAX_ATTEMPTS`),
    /// so this is set well above them and only catches jobs that cannot be processed at all.
    pub max_receive_count: u32,
    pub retention_secs: u32,
    pub dlq_retention_secs: u32,
    /// Records per sender invocation (at most 10: more needs a batching window, which delays).
    pub batch_size: u32,
    /// The most sender invocations working this lane at once: the event source's
    /// `ScalingConfig.MaximumConcurrency` (2 to 1,000 on AWS). The local runner uses it too.
    pub maximum_concurrency: u32,
}

/// The one generic index on `clinics` and `messages`: each item type chooses what its
/// `gsi1pk`/`gsi1sk` hold (docs/data-model.md lists them), so new access patterns need no new index.
pub const GSI1: IndexSpec =
    IndexSpec { name: "gsi1", partition_key: "gsi1pk", sort_key: "gsi1sk", projection: Projection::All };

/// The second generic index, for tables with two access patterns on one item type.
pub const GSI2: IndexSpec =
    IndexSpec { name: "gsi2", partition_key: "gsi2pk", sort_key: "gsi2sk", projection: Projection::All };

/// Messages by conversation (sparse: only messages in one), in time order.
pub const GSI3: IndexSpec =
    IndexSpec { name: "gsi3", partition_key: "gsi3pk", sort_key: "gsi3sk", projection: Projection::All };

/// The mailbox's views: one partition per clinic and bucket (`mailbox_views`), keys only, so
/// the many writes that leave a message in its bucket do not write this index.
pub const GSI4: IndexSpec =
    IndexSpec { name: "gsi4", partition_key: "gsi4pk", sort_key: "gsi4sk", projection: Projection::KeysOnly };

/// A mass alert's messages (sparse), keys only: written when each is created, read when the
/// alert's report is made.
pub const GSI5: IndexSpec =
    IndexSpec { name: "gsi5", partition_key: "gsi5pk", sort_key: "gsi5sk", projection: Projection::KeysOnly };

/// `gsi1` on `messages`: a clinic's timeline (messages), conversations and alerts. A message is
/// written four or five times on its way (claimed, submitted, sent, delivered) and an `ALL` index
/// would be written with it each time, at the whole item's size: it was a third of what a text
/// cost. So it projects only what the timeline's searches filter on and what never changes
/// after a message is created (`deleted` aside, which a person changes); a page reads the items
/// behind its entries (`dynamo::items_behind`).
pub const MESSAGES_GSI1: IndexSpec = IndexSpec {
    name: "gsi1",
    partition_key: "gsi1pk",
    sort_key: "gsi1sk",
    projection: Projection::Include(&["deleted", "contact_id", "to", "from", "created_by"]),
};

/// `gsi2` on `messages`: what the scheduler must act on when (scheduled texts, credit retries,
/// texts with no news) and the alerts still open. Keys only: a text waiting for its status is
/// rewritten by each callback, which moves its entry (keyed by `updated_at`); a keys-only entry
/// costs a unit to move where a whole 1.3 KB item cost two.
pub const MESSAGES_GSI2: IndexSpec =
    IndexSpec { name: "gsi2", partition_key: "gsi2pk", sort_key: "gsi2sk", projection: Projection::KeysOnly };

pub const CLINICS_TABLE: TableSpec = TableSpec {
    logical_id: "ClinicsTable",
    suffix: "clinics",
    partition_key: "pk",
    sort_key: "sk",
    indexes: &[GSI1],
    ttl_attribute: Some("expires_at"),
};

pub const MESSAGES_TABLE: TableSpec = TableSpec {
    logical_id: "MessagesTable",
    suffix: "messages",
    partition_key: "pk",
    sort_key: "sk",
    indexes: &[MESSAGES_GSI1, MESSAGES_GSI2, GSI3, GSI4, GSI5],
    ttl_attribute: None,
};

pub const COUNTERS_TABLE: TableSpec = TableSpec {
    logical_id: "CountersTable",
    suffix: "counters",
    partition_key: "pk",
    sort_key: "sk",
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

pub const APPOINTMENTS_TABLE: TableSpec = TableSpec {
    logical_id: "AppointmentsTable",
    suffix: "appointments",
    partition_key: "pk",
    sort_key: "sk",
    // Keys only: deciding an appointment's reminder rewrote its whole entry in gsi2 (and a booking
    // or move in both), for nothing the queries needed that the items cannot give; the items are
    // read behind the entries (`dynamo::items_behind`).
    indexes: &[
        IndexSpec { name: "gsi1", partition_key: "gsi1pk", sort_key: "gsi1sk", projection: Projection::KeysOnly },
        IndexSpec { name: "gsi2", partition_key: "gsi2pk", sort_key: "gsi2sk", projection: Projection::KeysOnly },
    ],
    ttl_attribute: None,
};

pub const TABLES: [TableSpec; 4] = [CLINICS_TABLE, MESSAGES_TABLE, COUNTERS_TABLE, APPOINTMENTS_TABLE];

/// The scheduler's Lambda timeout: a tick that cannot finish resumes at the next one.
pub const SCHEDULER_TIMEOUT_SECS: u32 = 60;

/// The sender's Lambda timeout; the lanes' visibility timeout is six times this.
pub const SENDER_TIMEOUT_SECS: u32 = 30;

/// Lambda's guidance for SQS sources: six times the function's timeout, so a batch still being
/// worked on (with retries of the invocation) is never handed to a second sender.
const LANE_VISIBILITY_SECS: u32 = 6 * SENDER_TIMEOUT_SECS;
const FOURTEEN_DAYS: u32 = 14 * 24 * 3600;
/// SQS's largest batch without a batching window.
pub const MAX_BATCH_SIZE: u32 = 10;
/// The smallest `MaximumConcurrency` AWS accepts.
pub const MIN_MAXIMUM_CONCURRENCY: u32 = 2;

/// Conversation texts: small batches, many invocations (template.yaml gives the reasons).
pub const INTERACTIVE_QUEUE: QueueSpec = QueueSpec {
    logical_id: "InteractiveQueue",
    dlq_logical_id: "InteractiveDlq",
    suffix: "interactive",
    visibility_timeout_secs: LANE_VISIBILITY_SECS,
    max_receive_count: 20,
    retention_secs: FOURTEEN_DAYS,
    dlq_retention_secs: FOURTEEN_DAYS,
    batch_size: 5,
    maximum_concurrency: 20,
};

/// Reminders and scheduled texts: full batches, paced by the connection.
pub const SCHEDULED_QUEUE: QueueSpec = QueueSpec {
    logical_id: "ScheduledQueue",
    dlq_logical_id: "ScheduledDlq",
    suffix: "scheduled",
    max_receive_count: 24,
    batch_size: 10,
    maximum_concurrency: 10,
    ..INTERACTIVE_QUEUE
};

/// Mass alerts: full batches and the fewest invocations AWS allows.
pub const BULK_QUEUE: QueueSpec = QueueSpec {
    logical_id: "BulkQueue",
    dlq_logical_id: "BulkDlq",
    suffix: "bulk",
    max_receive_count: 24,
    batch_size: 10,
    maximum_concurrency: MIN_MAXIMUM_CONCURRENCY,
    ..INTERACTIVE_QUEUE
};

// Bulk must not crowd out the other lanes: it gets fewer invocations than either.
const _: () = assert!(
    BULK_QUEUE.maximum_concurrency < SCHEDULED_QUEUE.maximum_concurrency
        && SCHEDULED_QUEUE.maximum_concurrency <= INTERACTIVE_QUEUE.maximum_concurrency
);

pub const QUEUES: [QueueSpec; 3] = [INTERACTIVE_QUEUE, SCHEDULED_QUEUE, BULK_QUEUE];

/// The fan-out's Lambda timeout: 10,000 recipients take about a minute; a stopped fan-out
/// resumes when SQS hands its event out again.
pub const FANOUT_TIMEOUT_SECS: u32 = 300;

/// Confirmed mass alerts, from the bus to `mass-alert-fanout`: one alert per invocation, at most
/// two at once (the smallest `MaximumConcurrency`); an alert that keeps failing ends in the DLQ.
pub const MASS_ALERT_QUEUE: QueueSpec = QueueSpec {
    logical_id: "MassAlertQueue",
    dlq_logical_id: "MassAlertDlq",
    suffix: "mass-alerts",
    visibility_timeout_secs: 6 * FANOUT_TIMEOUT_SECS,
    max_receive_count: 5,
    retention_secs: FOURTEEN_DAYS,
    dlq_retention_secs: FOURTEEN_DAYS,
    batch_size: 1,
    maximum_concurrency: MIN_MAXIMUM_CONCURRENCY,
};

/// The rule that sends `MassAlertConfirmed` events from the bus to [`MASS_ALERT_QUEUE`].
pub const MASS_ALERT_RULE_LOGICAL_ID: &str = "MassAlertConfirmedRule";

/// The rule's event pattern: the product's own `MassAlertConfirmed` events only.
pub fn mass_alert_event_pattern() -> serde_json::Value {
    serde_json::json!({
        "source": [crate::event_bus::SOURCE],
        "detail-type": [crate::mass_alert_fanout::MASS_ALERT_CONFIRMED],
    })
}

pub const EVENT_BUS_LOGICAL_ID: &str = "EventBus";
pub const REPORTS_BUCKET_LOGICAL_ID: &str = "ReportsBucket";

/// `template.yaml` must deploy exactly what this module describes. CloudFormation's short-form
/// tags (`!Ref X`, `!GetAtt X.Arn`, `!Sub ...`) parse as tagged YAML values; the long forms
/// (`Ref: X`, `Fn::GetAtt: [X, Arn]`) are accepted as well.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde_norway::Value;

    use super::*;

    const TEMPLATE: &str = include_str!("../../template.yaml");

    const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
    const DYNAMODB_TABLE: &str = "AWS::DynamoDB::Table";
    const SQS_QUEUE: &str = "AWS::SQS::Queue";
    const SENDER_FUNCTION: &str = "SenderFunction";
    const SCHEDULER_FUNCTION: &str = "SchedulerFunction";
    const FANOUT_FUNCTION: &str = "MassAlertFanoutFunction";
    /// The scheduler works in whole minutes (reminder windows, the top of each business's hour).
    const SCHEDULER_RATE: &str = "rate(1 minute)";
    const HTTP_API: &str = "HttpApi";

    /// Every variable `Settings::from_env` (config.rs) reads. It has a default for
    /// `TWILIO_API_BASE` and `TWILIO_PREVIOUS_AUTH_TOKEN`, but the template sets them too.
    const SETTINGS_ENV_VARS: [&str; 22] = [
        "CLINICS_TABLE",
        "MESSAGES_TABLE",
        "COUNTERS_TABLE",
        "APPOINTMENTS_TABLE",
        "INTERACTIVE_QUEUE_URL",
        "SCHEDULED_QUEUE_URL",
        "BULK_QUEUE_URL",
        "EVENT_BUS_NAME",
        "REPORTS_BUCKET",
        "TWILIO_API_BASE",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PREVIOUS_AUTH_TOKEN",
        "PUBLIC_BASE_URL",
        "REPORT_LINK_SECONDS",
        "MASS_ALERT_CLOSE_AFTER_SECONDS",
        "SCHEDULED_SHARE_PERCENT",
        "BULK_SHARE_PERCENT",
        "SHARED_LANES_SHARE_PERCENT",
        "SEND_MAX_ATTEMPTS",
        "SEND_RETRY_BASE_SECONDS",
        "SEND_RETRY_MAX_DELAY_SECONDS",
    ];

    /// Variables naming a resource, with the logical id they must `!Ref`.
    const RESOURCE_ENV_VARS: [(&str, &str); 9] = [
        ("CLINICS_TABLE", CLINICS_TABLE.logical_id),
        ("MESSAGES_TABLE", MESSAGES_TABLE.logical_id),
        ("COUNTERS_TABLE", COUNTERS_TABLE.logical_id),
        ("APPOINTMENTS_TABLE", APPOINTMENTS_TABLE.logical_id),
        ("INTERACTIVE_QUEUE_URL", INTERACTIVE_QUEUE.logical_id),
        ("SCHEDULED_QUEUE_URL", SCHEDULED_QUEUE.logical_id),
        ("BULK_QUEUE_URL", BULK_QUEUE.logical_id),
        ("EVENT_BUS_NAME", EVENT_BUS_LOGICAL_ID),
        ("REPORTS_BUCKET", REPORTS_BUCKET_LOGICAL_ID),
    ];

    #[test]
    fn tables_match_their_specs() {
        let template = template();
        let mut problems = Problems::default();
        for spec in &TABLES {
            check_table(&template, spec, &mut problems);
        }
        problems.assert_none("template.yaml's tables disagree with TABLES");
    }

    #[test]
    fn queues_and_dead_letter_queues_match_their_specs() {
        let template = template();
        let mut problems = Problems::default();
        for spec in &QUEUES {
            check_queue(&template, spec, &mut problems);
        }
        problems.assert_none("template.yaml's queues disagree with QUEUES");
    }

    #[test]
    fn sender_consumes_every_lane_as_specified() {
        let template = template();
        let sender = required(resource(&template, SENDER_FUNCTION, SERVERLESS_FUNCTION));
        let mut problems = Problems::default();

        let timeout = prop(sender, "Timeout").or_else(|| at(&template, "Globals.Function.Timeout"));
        problems.check_number("SenderFunction Timeout", timeout, SENDER_TIMEOUT_SECS);

        let events = events_of_type(sender, "SQS");
        for (event, props) in &events {
            let queue = props.get("Queue");
            match queue.and_then(get_att) {
                Some((id, "Arn")) if QUEUES.iter().any(|spec| spec.logical_id == id) => {}
                _ => problems.add(format!(
                    "SenderFunction event {event}: Queue is {}, which is not !GetAtt <lane>.Arn \
                     for a lane in QUEUES",
                    show(queue)
                )),
            }
        }
        for spec in &QUEUES {
            check_lane_event(SENDER_FUNCTION, spec, &events, &mut problems);
            check_visibility_covers_sender(&template, spec, timeout, &mut problems);
        }
        problems.assert_none("template.yaml's sender disagrees with QUEUES / SENDER_TIMEOUT_SECS");
    }

    #[test]
    fn scheduler_ticks_every_minute_with_its_timeout() {
        let template = template();
        let scheduler = required(resource(&template, SCHEDULER_FUNCTION, SERVERLESS_FUNCTION));
        let mut problems = Problems::default();

        let timeout = prop(scheduler, "Timeout").or_else(|| at(&template, "Globals.Function.Timeout"));
        problems.check_number("SchedulerFunction Timeout", timeout, SCHEDULER_TIMEOUT_SECS);

        let events = events_of_type(scheduler, "Schedule");
        match events.as_slice() {
            [(event, props)] => {
                let schedule = props.get("Schedule");
                if text(schedule) != Some(SCHEDULER_RATE) {
                    let schedule = show(schedule);
                    problems.add(format!(
                        "SchedulerFunction event {event}: Schedule is {schedule}, expected {SCHEDULER_RATE}"
                    ));
                }
                let disabled = boolean(props.get("Enabled")) == Some(false)
                    || text(props.get("State")).is_some_and(|state| state != "ENABLED");
                if disabled {
                    problems.add(format!("SchedulerFunction event {event} is not enabled"));
                }
            }
            other => problems.add(format!("SchedulerFunction has {} Schedule events, expected 1", other.len())),
        }
        problems.assert_none("template.yaml's scheduler disagrees with SCHEDULER_TIMEOUT_SECS");
    }

    #[test]
    fn mass_alerts_go_from_the_bus_through_their_queue_to_the_fan_out() {
        let template = template();
        let mut problems = Problems::default();
        check_queue(&template, &MASS_ALERT_QUEUE, &mut problems);

        let fanout = required(resource(&template, FANOUT_FUNCTION, SERVERLESS_FUNCTION));
        let timeout = prop(fanout, "Timeout").or_else(|| at(&template, "Globals.Function.Timeout"));
        problems.check_number("MassAlertFanoutFunction Timeout", timeout, FANOUT_TIMEOUT_SECS);
        let events = events_of_type(fanout, "SQS");
        if events.len() != 1 {
            problems.add(format!("{FANOUT_FUNCTION} has {} SQS events, expected 1", events.len()));
        }
        check_lane_event(FANOUT_FUNCTION, &MASS_ALERT_QUEUE, &events, &mut problems);
        check_visibility_covers(&template, FANOUT_FUNCTION, &MASS_ALERT_QUEUE, timeout, &mut problems);

        match resource(&template, MASS_ALERT_RULE_LOGICAL_ID, "AWS::Events::Rule") {
            Err(problem) => problems.add(problem),
            Ok(rule) => {
                if prop(rule, "EventBusName").and_then(ref_target) != Some(EVENT_BUS_LOGICAL_ID) {
                    problems
                        .add(format!("{MASS_ALERT_RULE_LOGICAL_ID} EventBusName is not !Ref {EVENT_BUS_LOGICAL_ID}"));
                }
                let pattern = prop(rule, "EventPattern").and_then(|p| serde_json::to_value(p).ok());
                problems.check_eq(
                    &format!("{MASS_ALERT_RULE_LOGICAL_ID} EventPattern"),
                    pattern,
                    Some(mass_alert_event_pattern()),
                );
                let targets: Vec<_> =
                    list(prop(rule, "Targets")).iter().filter_map(|t| t.get("Arn").and_then(get_att)).collect();
                problems.check_eq(
                    &format!("{MASS_ALERT_RULE_LOGICAL_ID} Targets"),
                    targets,
                    vec![(MASS_ALERT_QUEUE.logical_id, "Arn")],
                );
            }
        }

        // Only the rule may put events on the queue.
        let policies = resources_of_type(&template, "AWS::SQS::QueuePolicy");
        let allowed = policies.iter().any(|(_, policy)| {
            let queues: Vec<_> = list(prop(policy, "Queues")).iter().filter_map(ref_target).collect();
            let statements = list(prop(policy, "PolicyDocument.Statement"));
            queues == [MASS_ALERT_QUEUE.logical_id]
                && statements.iter().any(|st| {
                    text(st.get("Effect")) == Some("Allow")
                        && text(at(st, "Principal.Service")) == Some("events.amazonaws.com")
                        && text(st.get("Action")) == Some("sqs:SendMessage")
                        && at(st, "Condition.ArnEquals.aws:SourceArn").and_then(get_att)
                            == Some((MASS_ALERT_RULE_LOGICAL_ID, "Arn"))
                })
        });
        if !allowed {
            problems.add(format!(
                "no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage to {} from {MASS_ALERT_RULE_LOGICAL_ID}",
                MASS_ALERT_QUEUE.logical_id
            ));
        }
        problems.assert_none("template.yaml's mass alert path disagrees with MASS_ALERT_QUEUE and the rule");
    }

    #[test]
    fn every_function_gets_every_setting_wired_to_its_resource() {
        let template = template();
        let globals = at(&template, "Globals.Function.Environment.Variables");
        let functions = resources_of_type(&template, SERVERLESS_FUNCTION);
        assert!(!functions.is_empty(), "template.yaml has no {SERVERLESS_FUNCTION}");

        let mut problems = Problems::default();
        for (id, function) in functions {
            let own = prop(function, "Environment.Variables");
            let variable = |name: &str| own.and_then(|v| v.get(name)).or_else(|| globals.and_then(|v| v.get(name)));
            for name in SETTINGS_ENV_VARS {
                if variable(name).is_none() {
                    problems.add(format!("{id} does not get {name} (neither Globals nor its own)"));
                }
            }
            for (name, target) in RESOURCE_ENV_VARS {
                if let Some(value) = variable(name)
                    && ref_target(value) != Some(target)
                {
                    let value = show(Some(value));
                    problems.add(format!("{id}: {name} is {value}, expected !Ref {target}"));
                }
            }
        }
        problems.assert_none("template.yaml's environment disagrees with Settings::from_env");
    }

    #[test]
    fn event_bus_and_reports_bucket_exist() {
        let template = template();
        let mut problems = Problems::default();
        let expected =
            [(EVENT_BUS_LOGICAL_ID, "AWS::Events::EventBus"), (REPORTS_BUCKET_LOGICAL_ID, "AWS::S3::Bucket")];
        for (id, resource_type) in expected {
            if let Err(problem) = resource(&template, id, resource_type) {
                problems.add(problem);
            }
        }
        problems.assert_none("template.yaml lacks a resource aws_resources.rs names");
    }

    /// The HTTP API's routes live in its OpenAPI body and invoke functions by name (template.yaml
    /// explains why). Each HttpApi event needs such a route, with its path and method, invoking its
    /// function's `FunctionName`; otherwise SAM generates an integration that refers to the function,
    /// and with `PUBLIC_BASE_URL` referring to the API that is a circular dependency.
    #[test]
    fn every_http_event_has_a_route_invoking_its_function_by_name() {
        let template = template();
        let api = required(resource(&template, HTTP_API, "AWS::Serverless::HttpApi"));
        let paths = prop(api, "DefinitionBody.paths");
        let mut problems = Problems::default();
        for (id, function) in resources_of_type(&template, SERVERLESS_FUNCTION) {
            let name = prop(function, "FunctionName").and_then(sub_text);
            for (event, props) in events_of_type(function, "HttpApi") {
                let what = format!("{id} event {event}");
                check_http_event(&what, name, props, paths, &mut problems);
            }
        }
        problems.assert_none("template.yaml's HTTP routes disagree with the functions' HttpApi events");
    }

    // ------------------------------------------------------------------------ checks

    fn check_table(template: &Value, spec: &TableSpec, problems: &mut Problems) {
        let id = spec.logical_id;
        let table = match resource(template, id, DYNAMODB_TABLE) {
            Ok(table) => table,
            Err(problem) => return problems.add(problem),
        };

        problems.check_eq(
            &format!("{id} KeySchema"),
            key_schema(prop(table, "KeySchema")),
            key_pairs(spec.partition_key, spec.sort_key),
        );

        let defined: BTreeMap<&str, &str> = list(prop(table, "AttributeDefinitions"))
            .iter()
            .map(|def| (text_or_missing(def.get("AttributeName")), text_or_missing(def.get("AttributeType"))))
            .collect();
        let mut key_attributes = vec![spec.partition_key, spec.sort_key];
        for index in spec.indexes {
            key_attributes.extend([index.partition_key, index.sort_key]);
        }
        let expected: BTreeMap<&str, &str> = key_attributes.into_iter().map(|name| (name, "S")).collect();
        problems.check_eq(&format!("{id} AttributeDefinitions (name: type)"), defined, expected);

        type Indexed<'a> = (KeyPairs<'a>, &'a str, Vec<&'a str>);
        let indexes: BTreeMap<&str, Indexed<'_>> = list(prop(table, "GlobalSecondaryIndexes"))
            .iter()
            .map(|gsi| {
                let projection = text_or_missing(at(gsi, "Projection.ProjectionType"));
                let included =
                    list(at(gsi, "Projection.NonKeyAttributes")).iter().map(|a| text_or_missing(Some(a))).collect();
                (text_or_missing(gsi.get("IndexName")), (key_schema(gsi.get("KeySchema")), projection, included))
            })
            .collect();
        let expected: BTreeMap<&str, Indexed<'_>> = spec
            .indexes
            .iter()
            .map(|index| {
                let projection = (index.projection.as_str(), index.projection.non_key_attributes().to_vec());
                (index.name, (key_pairs(index.partition_key, index.sort_key), projection.0, projection.1))
            })
            .collect();
        problems.check_eq(&format!("{id} GlobalSecondaryIndexes (name: keys, projection)"), indexes, expected);

        // A disabled TTL counts as none.
        let ttl = prop(table, "TimeToLiveSpecification")
            .filter(|ttl| boolean(ttl.get("Enabled")) == Some(true))
            .map(|ttl| text_or_missing(ttl.get("AttributeName")));
        problems.check_eq(&format!("{id} enabled TimeToLiveSpecification attribute"), ttl, spec.ttl_attribute);
    }

    fn check_queue(template: &Value, spec: &QueueSpec, problems: &mut Problems) {
        let (id, dlq_id) = (spec.logical_id, spec.dlq_logical_id);
        match resource(template, id, SQS_QUEUE) {
            Err(problem) => problems.add(problem),
            Ok(queue) => {
                let property = |path: &str| prop(queue, path);
                problems.check_number(
                    &format!("{id} VisibilityTimeout"),
                    property("VisibilityTimeout"),
                    spec.visibility_timeout_secs,
                );
                problems.check_number(
                    &format!("{id} MessageRetentionPeriod"),
                    property("MessageRetentionPeriod"),
                    spec.retention_secs,
                );
                problems.check_number(
                    &format!("{id} RedrivePolicy.maxReceiveCount"),
                    property("RedrivePolicy.maxReceiveCount"),
                    spec.max_receive_count,
                );
                let target = prop(queue, "RedrivePolicy.deadLetterTargetArn");
                if target.and_then(get_att) != Some((dlq_id, "Arn")) {
                    problems.add(format!(
                        "{id} RedrivePolicy.deadLetterTargetArn: template has {}, expected !GetAtt {dlq_id}.Arn",
                        show(target)
                    ));
                }
            }
        }
        match resource(template, dlq_id, SQS_QUEUE) {
            Err(problem) => problems.add(problem),
            Ok(dlq) => problems.check_number(
                &format!("{dlq_id} MessageRetentionPeriod"),
                prop(dlq, "MessageRetentionPeriod"),
                spec.dlq_retention_secs,
            ),
        }
    }

    /// The sender has exactly one SQS event for the lane, with the spec's batch size, maximum
    /// concurrency and partial batch failure reporting.
    fn check_lane_event(function: &str, spec: &QueueSpec, events: &[(&str, &Value)], problems: &mut Problems) {
        let id = spec.logical_id;
        let for_lane: Vec<&Value> = events
            .iter()
            .filter(|(_, props)| props.get("Queue").and_then(get_att) == Some((id, "Arn")))
            .map(|(_, props)| *props)
            .collect();
        let props = match for_lane.as_slice() {
            [props] => *props,
            other => {
                let count = other.len();
                return problems.add(format!("{function} has {count} SQS events for {id}, expected 1"));
            }
        };
        problems.check_number(&format!("{function}'s {id} event BatchSize"), props.get("BatchSize"), spec.batch_size);
        problems.check_number(
            &format!("{function}'s {id} event ScalingConfig.MaximumConcurrency"),
            at(props, "ScalingConfig.MaximumConcurrency"),
            spec.maximum_concurrency,
        );
        let response_types: Vec<&str> =
            list(props.get("FunctionResponseTypes")).iter().map(|t| text_or_missing(Some(t))).collect();
        if !response_types.contains(&"ReportBatchItemFailures") {
            problems.add(format!(
                "{function}'s {id} event FunctionResponseTypes is {response_types:?}, \
                 it must include ReportBatchItemFailures"
            ));
        }
    }

    /// Lambda's guidance for SQS sources: visibility timeout at least six times the function's.
    fn check_visibility_covers_sender(
        template: &Value,
        spec: &QueueSpec,
        sender_timeout: Option<&Value>,
        problems: &mut Problems,
    ) {
        check_visibility_covers(template, SENDER_FUNCTION, spec, sender_timeout, problems);
    }

    fn check_visibility_covers(
        template: &Value,
        function: &str,
        spec: &QueueSpec,
        sender_timeout: Option<&Value>,
        problems: &mut Problems,
    ) {
        let id = spec.logical_id;
        let visibility =
            resource(template, id, SQS_QUEUE).ok().and_then(|queue| number(prop(queue, "VisibilityTimeout")));
        if let (Some(visibility), Some(timeout)) = (visibility, number(sender_timeout))
            && visibility < 6 * timeout
        {
            problems.add(format!(
                "{id} VisibilityTimeout {visibility} s is less than 6 x {function} Timeout ({timeout} s)"
            ));
        }
    }

    /// An HttpApi event targets `HttpApi`, and the API's OpenAPI body routes its path and method
    /// to the function named `function_name` (the `!Sub` text of its `FunctionName`).
    fn check_http_event(
        what: &str,
        function_name: Option<&str>,
        props: &Value,
        paths: Option<&Value>,
        problems: &mut Problems,
    ) {
        let api_id = props.get("ApiId");
        if api_id.and_then(ref_target) != Some(HTTP_API) {
            let api_id = show(api_id);
            problems.add(format!("{what}: ApiId is {api_id}, expected !Ref {HTTP_API}"));
        }
        let (Some(path), Some(method)) = (text(props.get("Path")), text(props.get("Method"))) else {
            return problems.add(format!("{what}: Path and Method must be literal strings"));
        };
        let Some(function_name) = function_name else {
            return problems
                .add(format!("{what}: the function needs FunctionName: !Sub \"${{AWS::StackName}}-<binary>\""));
        };
        // OpenAPI names operations in lower case; API Gateway's ANY has its own extension.
        let operation = match method.to_ascii_lowercase() {
            any if any == "any" => "x-amazon-apigateway-any-method".to_owned(),
            other => other,
        };
        let uri = paths
            .and_then(|paths| paths.get(path))
            .and_then(|route| route.get(operation.as_str()))
            .and_then(|operation| at(operation, "x-amazon-apigateway-integration.uri"));
        let expected_end = format!(":function:{function_name}/invocations");
        if !uri.and_then(sub_text).is_some_and(|uri| uri.ends_with(&expected_end)) {
            problems.add(format!(
                "{what}: HttpApi's DefinitionBody has no {method} {path} route whose integration \
                 uri is a !Sub ending in {expected_end:?}; it has {}",
                show(uri)
            ));
        }
    }

    // ------------------------------------------------------------------------ reading the template

    fn template() -> Value {
        serde_norway::from_str(TEMPLATE).expect("template.yaml should parse as YAML")
    }

    /// `Resources.<id>`, provided it has type `resource_type`.
    fn resource<'t>(template: &'t Value, id: &str, resource_type: &str) -> Result<&'t Value, String> {
        let resource = at(template, "Resources").and_then(|resources| resources.get(id));
        let Some(resource) = resource else {
            return Err(format!("Resources.{id} is missing (expected type {resource_type})"));
        };
        match text(resource.get("Type")) {
            Some(actual) if actual == resource_type => Ok(resource),
            _ => Err(format!("{id} Type: template has {}, expected {resource_type}", show(resource.get("Type")))),
        }
    }

    fn required(resource: Result<&Value, String>) -> &Value {
        resource.unwrap_or_else(|problem| panic!("template.yaml: {problem}"))
    }

    /// `(logical id, resource)` for every resource of the given type, in template order.
    fn resources_of_type<'t>(template: &'t Value, resource_type: &str) -> Vec<(&'t str, &'t Value)> {
        let Some(resources) = at(template, "Resources").and_then(Value::as_mapping) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, resource)| text(resource.get("Type")) == Some(resource_type))
            .map(|(id, resource)| (text_or_missing(Some(id)), resource))
            .collect()
    }

    /// `(event name, Properties)` for each of a function's events of the given type.
    fn events_of_type<'t>(function: &'t Value, event_type: &str) -> Vec<(&'t str, &'t Value)> {
        let Some(events) = prop(function, "Events").and_then(Value::as_mapping) else {
            return Vec::new();
        };
        events
            .iter()
            .filter(|(_, event)| text(event.get("Type")) == Some(event_type))
            .filter_map(|(name, event)| Some((text_or_missing(Some(name)), event.get("Properties")?)))
            .collect()
    }

    /// Follows dot-separated mapping keys.
    fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
        path.split('.').try_fold(value, |value, key| value.get(key))
    }

    /// `Properties.<path>` of a resource.
    fn prop<'v>(resource: &'v Value, path: &str) -> Option<&'v Value> {
        at(resource.get("Properties")?, path)
    }

    /// A literal string; a tagged value such as `!Ref X` is not one.
    fn text(value: Option<&Value>) -> Option<&str> {
        match value? {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    fn text_or_missing(value: Option<&Value>) -> &str {
        text(value).unwrap_or("<missing or not a literal string>")
    }

    /// A literal number; CloudFormation also takes numbers written as strings.
    fn number(value: Option<&Value>) -> Option<u64> {
        match value? {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
    }

    fn boolean(value: Option<&Value>) -> Option<bool> {
        match value? {
            Value::Bool(flag) => Some(*flag),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
    }

    fn list(value: Option<&Value>) -> &[Value] {
        value.and_then(Value::as_sequence).map_or(&[], Vec::as_slice)
    }

    /// The argument of intrinsic function `name`: `!Ref x` / `Ref: x`, `!GetAtt x` / `Fn::GetAtt: x`.
    fn intrinsic<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
        match value {
            Value::Tagged(tagged) if tagged.tag == name => Some(&tagged.value),
            Value::Mapping(mapping) if mapping.len() == 1 => {
                let long_name = if name == "Ref" { name.to_owned() } else { format!("Fn::{name}") };
                mapping.get(long_name.as_str())
            }
            _ => None,
        }
    }

    fn ref_target(value: &Value) -> Option<&str> {
        text(intrinsic(value, "Ref"))
    }

    /// The template string of a `!Sub` without variable map.
    fn sub_text(value: &Value) -> Option<&str> {
        text(intrinsic(value, "Sub"))
    }

    /// `(logical id, attribute)` of a `GetAtt`, in either the `X.Arn` or the `[X, Arn]` form.
    fn get_att(value: &Value) -> Option<(&str, &str)> {
        match intrinsic(value, "GetAtt")? {
            Value::String(text) => text.split_once('.'),
            Value::Sequence(parts) => match parts.as_slice() {
                [Value::String(id), Value::String(attribute)] => Some((id, attribute)),
                _ => None,
            },
            _ => None,
        }
    }

    type KeyPairs<'a> = Vec<(&'a str, &'a str)>;

    /// A `KeySchema` as `(attribute, HASH | RANGE)` pairs, in template order.
    fn key_schema(schema: Option<&Value>) -> KeyPairs<'_> {
        list(schema)
            .iter()
            .map(|key| (text_or_missing(key.get("AttributeName")), text_or_missing(key.get("KeyType"))))
            .collect()
    }

    fn key_pairs<'a>(partition_key: &'a str, sort_key: &'a str) -> KeyPairs<'a> {
        vec![(partition_key, "HASH"), (sort_key, "RANGE")]
    }

    /// A value as YAML on one line, for messages.
    fn show(value: Option<&Value>) -> String {
        match value.map(serde_norway::to_string) {
            None => "nothing".to_owned(),
            Some(Ok(yaml)) => yaml.trim_end().replace('\n', " "),
            Some(Err(error)) => format!("<unprintable: {error}>"),
        }
    }

    /// Every disagreement found, one line each; a test fails listing all of them.
    #[derive(Default)]
    struct Problems(Vec<String>);

    impl Problems {
        fn add(&mut self, problem: String) {
            self.0.push(problem);
        }

        fn check_eq<T: PartialEq + Debug>(&mut self, what: &str, template: T, expected: T) {
            if template != expected {
                self.add(format!("{what}: template has {template:?}, expected {expected:?}"));
            }
        }

        fn check_number(&mut self, what: &str, template: Option<&Value>, expected: u32) {
            if number(template) != Some(u64::from(expected)) {
                self.add(format!("{what}: template has {}, expected {expected}", show(template)));
            }
        }

        fn assert_none(self, headline: &str) {
            assert!(self.0.is_empty(), "{headline}:\n  - {}", self.0.join("\n  - "));
        }
    }
}

#[cfg(test)]
mod lane_settings {
    use super::*;
    use crate::retry_policy::MAX_ATTEMPTS;

    /// Each attempt may be received about three times (to wait for its slot, to send, to
    /// reconcile an unknown outcome): the DLQ must never take a job that is merely waiting.
    #[test]
    fn lanes_allow_every_attempt_to_wait_before_the_dlq() {
        for q in QUEUES {
            assert!(q.max_receive_count >= 3 * MAX_ATTEMPTS, "{}: {} receives", q.logical_id, q.max_receive_count);
        }
    }

    /// Quiet hours hold scheduled and bulk texts, never interactive ones; a hold longer than
    /// SQS's 12-hour hide takes two receives.
    #[test]
    fn held_lanes_allow_quiet_hours_on_top() {
        for q in [SCHEDULED_QUEUE, BULK_QUEUE] {
            assert!(q.max_receive_count >= 3 * MAX_ATTEMPTS + 2, "{}: {} receives", q.logical_id, q.max_receive_count);
        }
    }

    #[test]
    fn batch_sizes_and_concurrency_are_within_what_aws_accepts() {
        for q in QUEUES {
            assert!((1..=MAX_BATCH_SIZE).contains(&q.batch_size), "{}: batch {}", q.logical_id, q.batch_size);
            assert!(
                (MIN_MAXIMUM_CONCURRENCY..=1000).contains(&q.maximum_concurrency),
                "{}: maximum concurrency {}",
                q.logical_id,
                q.maximum_concurrency
            );
        }
    }
}
