//! `weir check pipeline.toml`: every source, sink and lookup of a pipeline reaches its external
//! system with the file's options (API line 1.1's [`ConnectionCheck`]) and says, one line each,
//! what works and what does not — before a job runs into it.
//!
//! ```text
//! weir check orders.toml
//! source orders (kafka): ok: broker metadata: 1 broker(s) at 127.0.0.1:9092
//! source orders (kafka): FAILED: topic orders exists: the topic does not exist: create it ...
//! sink out (files): ok: path ./out is writable
//! sink gen (blackhole): no connection check (nothing external to reach)
//! ```
//!
//! Exit 0 when every check passed, 1 when one failed, 2 when the file is not a valid pipeline.

use std::path::PathBuf;
use std::time::Duration;

use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectorRole};
use weir_connector_api::factory::find_connector;

use crate::pipeline::{self, ConnectorSettings};
use crate::Exit;

/// Options of `weir check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The pipeline file (TOML).
    pub file: PathBuf,
    /// How long one connector's checks may take before they count as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    pub timeout: f64,
}

/// One node to check.
struct Target<'a> {
    role: ConnectorRole,
    name: &'a str,
    connector: &'a str,
    settings: &'a ConnectorSettings,
}

/// Runs `weir check`.
pub fn command(args: &CheckArgs) -> Exit {
    let (text, name) = match crate::read_pipeline(&args.file) {
        Ok(read) => read,
        Err(exit) => return exit,
    };
    let file = args.file.display().to_string();
    let (pipeline, diagnostics) = pipeline::validate(&text, &name);
    if !diagnostics.sorted().is_empty() {
        eprintln!("{}", diagnostics.render(&file));
    }
    let Some(pipeline) = pipeline else {
        eprintln!("{file}: not a valid pipeline; nothing was checked");
        return Exit::Invalid;
    };
    let mut targets = Vec::new();
    for s in &pipeline.sources {
        targets.push(Target {
            role: ConnectorRole::Source,
            name: &s.name,
            connector: &s.connector,
            settings: &s.settings,
        });
    }
    for t in &pipeline.transforms {
        if let Some(lookup) = &t.lookup {
            targets.push(Target {
                role: ConnectorRole::Lookup,
                name: &t.name,
                connector: &lookup.connector,
                settings: &lookup.settings,
            });
        }
    }
    for s in &pipeline.sinks {
        targets.push(Target {
            role: ConnectorRole::Sink,
            name: &s.name,
            connector: &s.connector,
            settings: &s.settings,
        });
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    let limit = Duration::from_secs_f64(args.timeout.clamp(0.1, 3600.0));
    let mut failed = 0_usize;
    for target in &targets {
        let prefix = format!("{} {} ({})", target.role, target.name, target.connector);
        let Some(check) = find_connector(target.connector).and_then(|f| f.as_connection_check())
        else {
            println!("{prefix}: no connection check (the connector declares none)");
            continue;
        };
        let ctx = target.settings.context(target.name);
        let items = runtime.block_on(async {
            tokio::time::timeout(
                limit,
                check.check(target.role, &target.settings.options, &ctx),
            )
            .await
        });
        let items = items.unwrap_or_else(|_| {
            vec![CheckItem::new(
                "connection check",
                CheckOutcome::Failed(format!(
                    "no answer within {}: is the system reachable from here? (raise --timeout \
                     if it is just slow)",
                    weir_connector_api::config::format_duration(limit)
                )),
            )]
        });
        if items.is_empty() {
            println!("{prefix}: ok: nothing to check with these options");
        }
        for item in items {
            let line = match &item.outcome {
                CheckOutcome::Ok(detail) => format!("ok: {}: {detail}", item.what),
                CheckOutcome::Failed(reason) => {
                    failed += 1;
                    format!("FAILED: {}: {reason}", item.what)
                }
                CheckOutcome::CredentialsRejected(reason) => {
                    failed += 1;
                    format!("CREDENTIALS REJECTED: {}: {reason}", item.what)
                }
                // Outcomes added by later API lines count as failures until this build
                // knows them.
                other => {
                    failed += 1;
                    format!("FAILED: {}: {other:?}", item.what)
                }
            };
            println!("{prefix}: {line}");
        }
    }
    if let Some(checkpointing) = &pipeline.checkpointing {
        let item = runtime.block_on(async {
            tokio::time::timeout(limit, storage_check(&checkpointing.storage))
                .await
                .unwrap_or_else(|_| {
                    CheckItem::new(
                        "checkpoint storage",
                        CheckOutcome::Failed(format!(
                            "no answer within {}",
                            weir_connector_api::config::format_duration(limit)
                        )),
                    )
                })
        });
        match &item.outcome {
            CheckOutcome::Ok(detail) => println!("checkpointing: ok: {}: {detail}", item.what),
            CheckOutcome::CredentialsRejected(reason) => {
                failed += 1;
                println!(
                    "checkpointing: CREDENTIALS REJECTED: {}: {reason}",
                    item.what
                );
            }
            other => {
                failed += 1;
                let reason = match other {
                    CheckOutcome::Failed(reason) => reason.clone(),
                    other => format!("{other:?}"),
                };
                println!("checkpointing: FAILED: {}: {reason}", item.what);
            }
        }
    }
    // Connection checks may leave client threads behind (e.g. librdkafka's); do not wait.
    runtime.shutdown_background();
    if failed == 0 {
        println!("{file}: every check passed");
        Exit::Ok
    } else {
        eprintln!(
            "{file}: {failed} check{} failed",
            if failed == 1 { "" } else { "s" }
        );
        Exit::Failed
    }
}

/// The checkpoint storage takes a probe file (written, then deleted): a local directory, or an
/// S3 bucket through the `s3://` filesystem of `weir-connector-s3` — the files connector's
/// writable-path check.
async fn storage_check(storage: &pipeline::Storage) -> CheckItem {
    let target = match storage {
        pipeline::Storage::Memory => {
            return CheckItem::new(
                "checkpoint storage",
                CheckOutcome::Ok("in memory: nothing to reach (lost with the process)".to_owned()),
            )
        }
        pipeline::Storage::Local(dir) => dir.display().to_string(),
        pipeline::Storage::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
    };
    let mut item = weir_connector_files::check::check_writable(&target).await;
    item.what = format!("checkpoint storage {target} is writable");
    item
}
