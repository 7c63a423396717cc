//! One module per command. Each returns the process exit code (see `exit`).

mod agent;
pub mod check;
mod compat;
mod compat_sql;
mod concept;
mod conns;
mod conns_end;
mod conns_view;
mod demo;
mod demo_service;
mod dns;
mod fleet;
mod hold;
mod keys;
mod manifest;
mod refs;
pub mod report;
pub mod run;
mod status;
mod survey;
mod survey_compare;
mod verify_config;
mod verify_db;
mod verify_tree;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Concept(a) => concept::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Status(a) => status::run(&a),
        Command::Report(a) => report::run(&a),
        Command::Verify(crate::cli::VerifyCommand::Tree(a)) => verify_tree::run(&a),
        Command::Verify(crate::cli::VerifyCommand::Db(a)) => verify_db::run(&a),
        Command::Verify(crate::cli::VerifyCommand::Config(a)) => verify_config::run(&a),
        Command::Dns(crate::cli::DnsCommand::Check(a)) => dns::check(&a),
        Command::Dns(crate::cli::DnsCommand::Switch(a)) => dns::switch(&a),
        Command::Compat(crate::cli::CompatCommand::Replay(a)) => compat::replay(&a),
        Command::Compat(crate::cli::CompatCommand::Record(a)) => compat::record(&a),
        Command::Compat(crate::cli::CompatCommand::Probe(a)) => compat::probe(&a),
        Command::Compat(crate::cli::CompatCommand::ReplaySql(a)) => compat_sql::replay_sql(&a),
        Command::Manifest(a) => manifest::run(&a),
        Command::Keys(crate::cli::KeysCommand::Scan(a)) => keys::scan(&a),
        Command::Keys(crate::cli::KeysCommand::Compare(a)) => keys::compare(&a),
        Command::Conns(crate::cli::ConnsCommand::List(a)) => conns::list(&a),
        Command::Conns(crate::cli::ConnsCommand::Drain(a)) => conns::drain(&a),
        Command::Refs(crate::cli::RefsCommand::Scan(a)) => refs::scan(&a),
        Command::Conns(crate::cli::ConnsCommand::Watch(a)) => conns_view::watch(&a),
        Command::Hold(a) => hold::run(&a),
        Command::Survey(a) => survey::run(&a),
        Command::Fleet(crate::cli::FleetCommand::Report(a)) => fleet::run(&a),
        Command::Demo(a) => demo::run(&a),
        Command::Agent(a) => agent::run(&a),
        Command::DemoService(a) => demo_service::run(&a),
    }
}

/// Runs `scan` on each location on a thread of its own (`keys scan`, `refs scan`: each its own
/// walk and host session), the results in the order of `locations`; a thread that panicked is
/// an error naming it.
fn side_by_side<T: Send>(
    locations: &[String],
    scan: impl Fn(&str) -> Result<T, String> + Sync,
) -> Vec<Result<T, String>> {
    std::thread::scope(|s| {
        let scan = &scan;
        let threads: Vec<_> = locations
            .iter()
            .map(|loc| s.spawn(move || scan(loc)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("the scan's thread panicked".into()))
            })
            .collect()
    })
}
