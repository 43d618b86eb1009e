//! codegen (see DESIGN.md).

pub mod templates;
