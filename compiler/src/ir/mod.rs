//! ir (see DESIGN.md).
