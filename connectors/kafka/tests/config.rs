//! Options: validation (every problem at once), mapping onto the builders, and the README
//! tables generated from the definitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_api::config::ConfigError;
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_kafka::config::{
    sink_options, source_options, KafkaSinkOptions, KafkaSourceOptions,
};
use weir_connector_kafka::sink::RecordSerializer;
use weir_connector_kafka::source::Utf8Deserializer;
use weir_connector_kafka::DeliveryGuarantee;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_minimal_source_config_builds() {
    let o = KafkaSourceOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "localhost:9092"),
        ("topic", "a;b"),
        ("scan.startup.mode", "earliest-offset"),
        ("scan.bounded.mode", "latest-offset"),
        ("properties.fetch.wait.max.ms", "50"),
    ]))
    .unwrap();
    let source = o.builder(Utf8Deserializer).build().unwrap();
    assert_eq!(source.boundedness(), Boundedness::Bounded);
}

#[test]
fn every_source_problem_is_reported_at_once() {
    let errors = KafkaSourceOptions::from_map(&map(&[
        ("topic", "a"),
        ("topic-pattern", "a.*"),
        ("scan.startup.mode", "timestamp"),
        ("scan.bounded.mode", "specific-offsets"),
        ("scan.startup.mod", "x"),
        ("scan.topic-partition-discovery.interval", "soon"),
    ]))
    .unwrap_err();
    let text = errors.to_string();
    let keys: Vec<String> = errors.iter().map(|e| e.key().to_owned()).collect();
    assert!(
        keys.contains(&"properties.bootstrap.servers".to_owned()),
        "{text}"
    );
    assert!(text.contains("did you mean `scan.startup.mode`"), "{text}");
    assert!(text.contains("scan.startup.timestamp-millis"), "{text}");
    assert!(text.contains("scan.bounded.specific-offsets"), "{text}");
    assert!(
        text.contains("read either a topic list or a pattern"),
        "{text}"
    );
    assert!(
        keys.contains(&"scan.topic-partition-discovery.interval".to_owned()),
        "{text}"
    );
    assert!(errors.len() >= 6, "{text}");
}

#[test]
fn group_offsets_need_a_group_and_specific_offsets_one_topic() {
    let errors = KafkaSourceOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "b:1"),
        ("topic", "a;b"),
        ("scan.bounded.mode", "specific-offsets"),
        ("scan.bounded.specific-offsets", "partition:0,offset:1"),
    ]))
    .unwrap_err();
    let text = errors.to_string();
    assert!(text.contains("properties.group.id"), "{text}");
    assert!(text.contains("exactly one `topic`"), "{text}");
    let errors = KafkaSourceOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "b:1"),
        ("topic", "a"),
        ("scan.startup.mode", "specific-offsets"),
        ("scan.startup.specific-offsets", "partition:zero"),
    ]))
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, ConfigError::Rejected { .. })),
        "{errors}"
    );
}

#[test]
fn sink_exactly_once_needs_a_valid_prefix() {
    let errors = KafkaSinkOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "b:1"),
        ("sink.delivery-guarantee", "exactly-once"),
    ]))
    .unwrap_err();
    assert!(
        errors.to_string().contains("transactional-id prefix"),
        "{errors}"
    );
    let errors = KafkaSinkOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "b:1"),
        ("sink.delivery-guarantee", "exactly-once"),
        ("sink.transactional-id-prefix", "bad prefix!"),
        ("sink.partitioner", "random"),
    ]))
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors}");
    let ok = KafkaSinkOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "b:1"),
        ("topic", "out"),
        ("sink.delivery-guarantee", "exactly-once"),
        ("sink.transactional-id-prefix", "orders-job"),
    ]))
    .unwrap();
    let sink = ok
        .builder(RecordSerializer::<String>::string())
        .build()
        .unwrap();
    assert_eq!(sink.delivery_guarantee(), DeliveryGuarantee::ExactlyOnce);
}

#[test]
fn transaction_timeout_is_checked_against_the_checkpoint_interval() {
    let err = weir_connector_kafka::KafkaSink::<String>::builder()
        .bootstrap_servers("b:1")
        .topic("t")
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix("p")
        .property("transaction.timeout.ms", "1000")
        .checkpoint_interval(std::time::Duration::from_secs(5))
        .serializer(RecordSerializer::<String>::string())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be longer than the checkpoint interval"),
        "{err}"
    );
}

fn section(readme: &str, name: &str) -> String {
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let from = readme.find(&start).expect("start marker") + start.len();
    let to = readme.find(&end).expect("end marker");
    readme[from..to].to_owned()
}

/// The README's tables are generated: replace them with `to_markdown()` when options change.
#[test]
fn readme_contains_exactly_the_generated_options_tables() {
    let readme = include_str!("../README.md");
    if std::env::var_os("WEIR_PRINT_OPTIONS").is_some() {
        println!(
            "{}\n\n{}",
            source_options().to_markdown(),
            sink_options().to_markdown()
        );
    }
    assert_eq!(
        section(readme, "source-options"),
        source_options().to_markdown()
    );
    assert_eq!(
        section(readme, "sink-options"),
        sink_options().to_markdown()
    );
}

#[test]
fn properties_that_load_a_shared_library_are_refused() {
    let source = KafkaSourceOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "localhost:9092"),
        ("topic", "a"),
        ("properties.plugin.library.paths", "/tmp/evil.so"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        source.contains("`properties.plugin.library.paths`")
            && source.contains("loads a shared library"),
        "{source}"
    );
    let sink = KafkaSinkOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "localhost:9092"),
        ("topic", "a"),
        ("properties.ssl.engine.location", "/tmp/engine.so"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        sink.contains("`properties.ssl.engine.location`")
            && sink.contains("loads a shared library"),
        "{sink}"
    );
    // Other properties pass through as before.
    KafkaSourceOptions::from_map(&map(&[
        ("properties.bootstrap.servers", "localhost:9092"),
        ("topic", "a"),
        ("scan.startup.mode", "earliest-offset"),
        ("properties.fetch.wait.max.ms", "50"),
    ]))
    .unwrap();
}
