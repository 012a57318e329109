//! Sync: remotes, the client side of push / pull / sync, and the merge applied on the
//! receiving side. The server side is `crate::serve`.

pub mod apply;
pub mod client;
pub mod graph;
pub mod objects;
pub mod overlay;
pub mod remote;
