//! What a survey of a server found ([`Inventory`]), and what follows from it, with no IO: the
//! host-side collector is rehost-host's `survey` capability (it runs where the files are, in
//! the agent on an ssh host); the draft plan ([`draft`]), the comparison of two surveys
//! ([`compare`]) and the dependency map ([`map`]) are pure functions of inventories.
//!
//! Every fact carries [`Found`]: where on the host it was read (a file and line, a `/proc`
//! entry, a command's output), so that the draft plan and the summary can say where each line
//! came from and nothing is guessed from names. An inventory comes from a host that may be
//! compromised: it is data, bounded by [`limits`] when received, and every string of it is
//! escaped where it is shown.

pub mod check;
pub mod compare;
pub mod draft;
pub mod example;
pub mod map;
pub mod model;

pub use model::*;
