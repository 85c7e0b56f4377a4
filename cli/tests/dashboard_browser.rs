//! The dashboard's pages in a real headless Chromium (the Debian package, installed by `cargo
//! xtask deps`) on a real running job: every task of the graph shows, the rates move between two
//! reads, a refused checkpoint shows with its reason, a failover with its root cause, and a name
//! made of markup shows as text (no script runs, no element is made from it). The main page's
//! screenshot goes to target/dashboard.png; with `WEIR_UPDATE_SCREENSHOT=1` to
//! docs/dashboard.png, which the README shows (so a test run leaves the tree clean). Without
//! Chromium the test fails and says to run `cargo xtask deps`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::dashboard_support;

use std::time::Duration;

use dashboard_support::cdp::Browser;
use dashboard_support::{DashboardJob, MARKUP_NAME, REFUSAL, SINK_FAILURE};
use serde_json::Value;

/// A JavaScript string literal of `text`.
fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

#[test]
fn the_pages_show_a_running_job_live_and_escape_its_names() {
    let job = DashboardJob::start();
    let mut browser = Browser::launch(1400, 1100);
    browser.navigate(&job.url());
    let wait = Duration::from_secs(30);
    browser.wait_for(
        "a first update",
        "Number(document.body.dataset.updates || 0) >= 1",
        wait,
    );

    // Every task of the graph, by id and by its full name.
    let api = job.job();
    let tasks = api["graph"]["tasks"].as_array().unwrap();
    for task in tasks {
        let id = task["id"].as_str().unwrap();
        let name = task["name"].as_str().unwrap();
        let shown = browser.eval(&format!(
            "(() => {{ const g = [...document.querySelectorAll('#graph g.task')]
                 .find(g => g.dataset.taskId === {id});
               return g ? g.querySelector('title').textContent.split('\\n')[0] : null; }})()",
            id = js(id)
        ));
        assert_eq!(
            shown,
            Value::String(name.to_owned()),
            "task {id} in the graph"
        );
    }
    assert_eq!(
        browser.eval("document.querySelectorAll('#graph g.task').length"),
        Value::from(tasks.len())
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#graph g.edge').length"),
        Value::from(api["graph"]["edges"].as_array().unwrap().len())
    );

    // The refused checkpoint with its reason, the failover with its root cause.
    browser.wait_for(
        "the refused checkpoint",
        &format!(
            "[...document.querySelectorAll('#checkpoints tbody tr')].some(tr =>
               tr.querySelector('td.status').textContent === 'failed'
               && tr.querySelector('td.reason').textContent.includes({}))",
            js(REFUSAL)
        ),
        wait,
    );
    browser.wait_for(
        "the failover",
        &format!(
            "[...document.querySelectorAll('#failovers td.root-cause')]
               .some(td => td.textContent.includes({}))",
            js(SINK_FAILURE)
        ),
        wait,
    );

    // Rates move: the source's records and rate, read at two updates.
    let read = "(() => { const rows = [...document.querySelectorAll('#subtasks tbody tr')]
                   .filter(tr => tr.dataset.task === 'orders');
                 const n = s => Number(s.replace(/,/g, '')) || 0;
                 return { updates: Number(document.body.dataset.updates),
                          records: rows.reduce((a, tr) => a + n(tr.querySelector('td.records-in').textContent), 0),
                          rate: rows.reduce((a, tr) => a + n(tr.querySelector('td.rate-in').textContent), 0) }; })()";
    browser.wait_for(
        "a source rate",
        &format!(
            "{read}.rate > 0 && document.querySelector('#job-state').textContent === 'running'"
        ),
        wait,
    );
    let first = browser.eval(read);
    browser.wait_for(
        "two more updates",
        &format!("{read}.updates >= {} + 2", first["updates"]),
        wait,
    );
    let second = browser.eval(read);
    assert!(
        second["records"].as_f64() > first["records"].as_f64(),
        "records move: {first} then {second}"
    );
    assert!(second["rate"].as_f64() > Some(0.0), "{second}");
    // Every subtask row has its watermark alignment pauses (none: no alignment group here).
    assert_eq!(
        browser.eval(
            "[...document.querySelectorAll('#subtasks tbody tr')]
               .every(tr => tr.querySelector('td.alignment-pauses').textContent === 'none')"
        ),
        Value::Bool(true)
    );

    // The markup name is text: shown literally, no element made of it, no script run.
    let cell = browser.eval(
        "[...document.querySelectorAll('#subtasks td.task')].map(td => td.textContent)
           .find(t => t.includes('alert(1)'))",
    );
    assert!(
        cell.as_str().is_some_and(|t| t.starts_with(MARKUP_NAME)),
        "the name shows as text: {cell}"
    );
    assert_eq!(browser.eval("document.querySelectorAll('img').length"), 0);
    assert_eq!(
        browser.eval("[...document.scripts].map(s => s.src)"),
        serde_json::json!([format!("{}app.js", job.url())])
    );
    assert_eq!(
        browser.eval("document.body.dataset.pwned === undefined"),
        Value::Bool(true)
    );
    let graph_text = browser.eval("document.querySelector('#graph').textContent");
    assert!(graph_text.as_str().unwrap().contains("<script>alert(1)"));
    assert!(
        browser.dialogs.is_empty(),
        "no alert ran: {:?}",
        browser.dialogs
    );
    assert!(browser.exceptions.is_empty(), "{:?}", browser.exceptions);

    // The README's picture of the main page, replaced only when asked.
    let shot = if std::env::var_os("WEIR_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        common::repo().join("docs/dashboard.png")
    } else {
        common::repo().join("target/dashboard.png")
    };
    browser.screenshot(&shot);
}
