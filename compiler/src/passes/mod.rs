//! Passes over the IR. Each pass takes a graph and returns a rewritten one; the verifier runs
//! after lowering and after every pass (`run_verified`).

pub mod conv_merge;
pub mod dce;
pub mod fuse;
pub mod gemm_merge;
pub mod placement;
pub mod slices;
pub mod verify;

pub use placement::Placement;
pub use verify::verify;

use crate::ir::{Graph, IrError};

/// Runs `pass` and verifies its result, naming the pass when verification fails.
pub fn run_verified(
    name: &str,
    graph: Graph,
    pass: impl FnOnce(Graph) -> Result<Graph, IrError>,
) -> Result<Graph, IrError> {
    let out = pass(graph)?;
    verify(&out).map_err(|e| IrError::Verify(format!("after pass `{name}`: {e}")))?;
    Ok(out)
}
