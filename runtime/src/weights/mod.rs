//! weights (see DESIGN.md).
