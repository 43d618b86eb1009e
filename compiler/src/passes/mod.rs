//! passes (see DESIGN.md).
