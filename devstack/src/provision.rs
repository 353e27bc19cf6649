//! Creates the tables, lanes, bus and bucket on the local stack from `shared::aws_resources`,
//! the same description `template.yaml` is tested against.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::aws_resources::{
    APPOINTMENTS_TABLE, CLINICS_TABLE, COUNTERS_TABLE, MASS_ALERT_QUEUE, MASS_ALERT_RULE_LOGICAL_ID, MESSAGES_TABLE,
    QUEUES, QueueSpec, TABLES, TableSpec, mass_alert_event_pattern,
};
use shared::config::{AlertSettings, QueueUrls, SendingSettings, Settings, TableNames, TwilioSettings};

/// What was created, by name.
#[derive(Debug, Clone)]
pub struct Resources {
    pub tables: TableNames,
    pub queues: QueueUrls,
    /// Dead-letter queue URL per lane, in `QUEUES` order.
    pub dlqs: Vec<String>,
    pub event_bus: String,
    pub reports_bucket: String,
    /// Where `MassAlertConfirmed` events arrive for the fan-out, and its dead-letter queue.
    pub mass_alert_queue: String,
    pub mass_alert_dlq: String,
}

impl Resources {
    /// The settings of functions using these resources, calling Twilio as `twilio` says and
    /// reached by Twilio at `public_base_url` (alert settings as deployed by default).
    pub fn settings(&self, twilio: TwilioSettings, public_base_url: url::Url) -> Settings {
        Settings {
            tables: self.tables.clone(),
            queues: self.queues.clone(),
            event_bus: self.event_bus.clone(),
            reports_bucket: self.reports_bucket.clone(),
            twilio,
            public_base_url,
            alerts: AlertSettings::default(),
            sending: SendingSettings::default(),
        }
    }
}

/// `time_scale` divides the lanes' visibility timeout, so tests see redeliveries in seconds.
pub async fn provision(aws: &SdkConfig, prefix: &str, time_scale: u32) -> anyhow::Result<Resources> {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    for spec in TABLES {
        create_table(&dynamo, &Settings::table_name(prefix, &spec), &spec).await?;
    }
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut urls = Vec::new();
    let mut dlqs = Vec::new();
    for spec in QUEUES {
        let (url, dlq) = create_lane(&sqs, prefix, &spec, time_scale).await?;
        urls.push(url);
        dlqs.push(dlq);
    }
    let [interactive, scheduled, bulk]: [String; 3] =
        urls.try_into().map_err(|_| anyhow::anyhow!("expected three lanes"))?;
    let event_bus = format!("{prefix}-bus");
    let events = aws_sdk_eventbridge::Client::new(aws);
    events.create_event_bus().name(&event_bus).send().await?;
    let (mass_alert_queue, mass_alert_dlq) = create_lane(&sqs, prefix, &MASS_ALERT_QUEUE, time_scale).await?;
    route_mass_alerts(&events, &sqs, &event_bus, &mass_alert_queue).await?;
    let reports_bucket = format!("{prefix}-reports");
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(aws).force_path_style(true).build());
    s3.create_bucket().bucket(&reports_bucket).send().await?;
    s3.put_public_access_block()
        .bucket(&reports_bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await?;
    Ok(Resources {
        tables: TableNames {
            clinics: Settings::table_name(prefix, &CLINICS_TABLE),
            messages: Settings::table_name(prefix, &MESSAGES_TABLE),
            counters: Settings::table_name(prefix, &COUNTERS_TABLE),
            appointments: Settings::table_name(prefix, &APPOINTMENTS_TABLE),
        },
        queues: QueueUrls { interactive, scheduled, bulk },
        dlqs,
        event_bus,
        reports_bucket,
        mass_alert_queue,
        mass_alert_dlq,
    })
}

/// The rule `template.yaml` deploys: `MassAlertConfirmed` events on the bus go to the fan-out's
/// queue (moto delivers them as EventBridge does).
async fn route_mass_alerts(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    queue_url: &str,
) -> anyhow::Result<()> {
    let rule = MASS_ALERT_RULE_LOGICAL_ID;
    events
        .put_rule()
        .name(rule)
        .event_bus_name(bus)
        .event_pattern(mass_alert_event_pattern().to_string())
        .send()
        .await?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow::anyhow!("mass alert queue without ARN"))?;
    let target = aws_sdk_eventbridge::types::Target::builder().id("mass-alert-fanout").arn(arn).build()?;
    events.put_targets().rule(rule).event_bus_name(bus).targets(target).send().await?;
    Ok(())
}

fn projection(projection: shared::aws_resources::Projection) -> ProjectionType {
    match projection {
        shared::aws_resources::Projection::All => ProjectionType::All,
        shared::aws_resources::Projection::KeysOnly => ProjectionType::KeysOnly,
        shared::aws_resources::Projection::Include(_) => ProjectionType::Include,
    }
}

fn key(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder().attribute_name(name).key_type(kind).build()?)
}

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, spec: &TableSpec) -> anyhow::Result<()> {
    let mut attributes = vec![spec.partition_key, spec.sort_key];
    for index in spec.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
    }
    attributes.sort_unstable();
    attributes.dedup();
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.partition_key, KeyType::Hash)?)
        .key_schema(key(spec.sort_key, KeyType::Range)?);
    for attribute in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder().attribute_name(attribute).attribute_type(ScalarAttributeType::S).build()?,
        );
    }
    for index in spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition_key, KeyType::Hash)?)
                .key_schema(key(index.sort_key, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(projection(index.projection))
                        .set_non_key_attributes(
                            Some(index.projection.non_key_attributes().iter().map(|a| (*a).to_owned()).collect())
                                .filter(|attributes: &Vec<String>| !attributes.is_empty()),
                        )
                        .build(),
                )
                .build()?,
        );
    }
    request.send().await?;
    if let Some(ttl) = spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build()?)
            .send()
            .await?;
    }
    Ok(())
}

async fn create_lane(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    spec: &QueueSpec,
    time_scale: u32,
) -> anyhow::Result<(String, String)> {
    let dlq = client
        .create_queue()
        .queue_name(Settings::dlq_name(prefix, spec))
        .attributes(QueueAttributeName::MessageRetentionPeriod, spec.dlq_retention_secs.to_string())
        .send()
        .await?;
    let dlq_url = dlq.queue_url.ok_or_else(|| anyhow::anyhow!("DLQ without URL"))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow::anyhow!("DLQ without ARN"))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count });
    let visibility = (spec.visibility_timeout_secs / time_scale.max(1)).max(1);
    let queue = client
        .create_queue()
        .queue_name(Settings::queue_name(prefix, spec))
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .attributes(QueueAttributeName::MessageRetentionPeriod, spec.retention_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?;
    let url = queue.queue_url.ok_or_else(|| anyhow::anyhow!("queue without URL"))?;
    Ok((url, dlq_url))
}
