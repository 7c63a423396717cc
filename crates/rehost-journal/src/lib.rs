//! A run's state directory, read and written: the journal and everything folded from it.
//!
//! The journal ([`journal`]) is the source of truth of a run: the engine writes it through this
//! crate, and `rehost status` and the evidence read it through this crate, so there is one
//! format, one chain, one fold into step states ([`status`]) and attempts ([`history()`]) and one downtime ([`downtime()`]).
//! The typed step results ([`step_data`]), the files the journal keeps and the plan as run
//! ([`archive`]), the signed head ([`signing`]) and the run lock ([`RunLock`]) are here too.
//!
//! This crate does no work on hosts: it reads and writes the state directory only.

pub mod archive;
pub mod attempts;
pub mod downtime;
mod error;
pub mod journal;
mod lock;
pub mod signing;
pub mod state;
pub mod step_data;

pub use attempts::{History, history};
pub use downtime::{Downtime, Measured, MeasuredOutage, Outage, downtime};
pub use error::JournalError;
pub use journal::{Journal, Record, StepResult};
pub use lock::RunLock;
pub use state::{RunState, StepState, StepStatus, status};
pub use step_data::StepData;
