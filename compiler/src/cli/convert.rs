//! `modelc convert`.

/// Arguments of `modelc convert`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`modelc convert` is not implemented yet")
}
