//! sage: content-addressed, merge-aware snapshots of Claude Code homes.
//!
//! Data flows one way: a home on disk -> `scan` -> objects (`object`, `prolly`) in packs
//! (`pack`, `store`) -> a snapshot row (`db`) -> `checkout` back into a home. `Repo` is the
//! entry point; the CLI (`src/cli`) only parses, calls and renders.

pub mod care;
pub mod checkout;
pub mod clock;
pub mod db;
pub mod diff;
pub mod error;
pub mod failpoint;
pub mod fsutil;
pub mod gc;
pub mod id;
pub mod intent;
pub mod live;
pub mod lock;
pub mod merge;
pub mod messages;
pub mod object;
pub mod pack;
pub mod pathmap;
pub mod prolly;
pub mod protocol;
pub mod purge;
pub mod repo;
pub mod resolve;
pub mod retention;
pub mod rules;
pub mod scan;
pub mod serve;
pub mod session;
pub mod snapshot;
pub mod store;
pub mod sync;
pub mod testgen;
pub mod transport;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use id::{Kind, ObjectId};
pub use repo::Repo;
