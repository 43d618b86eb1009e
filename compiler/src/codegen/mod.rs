//! codegen (see DESIGN.md).
