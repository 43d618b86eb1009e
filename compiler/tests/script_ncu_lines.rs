//! `scripts/ncu_lines.py` on a small report in the shape of Nsight Compute's source page (CUDA
//! view: a "File Path" row per file, then its lines with their metrics and SASS rows): lines
//! ranked by stall samples with their source text, regions' shares, and a clear error when the
//! source file is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ncu_lines.py")
}

/// Runs the script with `python3`; `None` (with a notice) where there is none and CI is unset.
fn run(args: &[&Path], extra: &[&str]) -> Option<Output> {
    match Command::new("python3").arg(script()).args(args).args(extra).output() {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: python3 did not run ({e})");
            None
        }
        Err(e) => panic!("python3 did not run: {e}"),
    }
}

const HEADER: &str = "\"Line No\",\"Source\",\"Address\",\"Source\",\"Warp Stall Sampling (All Samples)\",\
\"Warp Stall Sampling (Not-issued Samples)\",\"# Samples\",\"Instructions Executed\",\"stall_barrier\",\
\"stall_long_sb\",\"stall_barrier (Not Issued)\"";

/// A report of kernel `k_ab12.cu` (lines 2, 3 and 5 sampled) and one header line.
fn report(dir: &Path) -> PathBuf {
    let text = format!(
        "\"File Path\",\"/usr/local/cuda/include/cuda_bf16.h\"\n\"Function Name\",\"k_ab12\"\n{HEADER}\n\
\"10\",\"<Unable to open source file>\",\"-\",\"-\",\"5\",\"5\",\"5\",\"100\",\"0\",\"5\",\"0\"\n\
\"File Path\",\"/work/main/k_ab12.cu\"\n\"Function Name\",\"k_ab12\"\n{HEADER}\n\
\"2\",\"<Unable to open source file>\",\"-\",\"-\",\"20\",\"20\",\"20\",\"1,000\",\"0\",\"20\",\"0\"\n\
\"\",\"\",\"0x7f00\",\"LDG.E R2, desc[UR4][R4.64]\",\"20\",\"20\",\"20\",\"1000\",\"0\",\"20\",\"0\"\n\
\"3\",\"<Unable to open source file>\",\"-\",\"-\",\"70\",\"60\",\"70\",\"3000\",\"60\",\"10\",\"0\"\n\
\"5\",\"<Unable to open source file>\",\"-\",\"-\",\"10\",\"5\",\"10\",\"6000\",\"0\",\"0\",\"0\"\n"
    );
    let path = dir.join("report.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modelc-ncu-lines-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lines_are_ranked_by_samples_with_their_source_and_regions_sum_up() {
    let dir = temp_dir("ok");
    let sources = dir.join("ksrc");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::write(
        sources.join("k_ab12.cu"),
        "// k_ab12\nfloat x = g[t];\n__syncthreads();\n\nacc += x * y;\n",
    )
    .unwrap();
    let csv = report(&dir);
    let Some(out) = run(
        &[&csv, &sources],
        &["--top", "2", "--region", "loads=1-2", "--region", "tail=4-9"],
    ) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // Only the .cu file's lines count (the header's line 10 does not): 100 samples, 10000 instructions.
    assert_eq!(lines[0], "100 warp stall samples, 10000 warp instructions", "{stdout}");
    // Line 3 first (70 samples, its barrier stalls first), then line 2; --top 2 stops there.
    assert!(
        lines[1].starts_with("    3  70.0%")
            && lines[1].contains("barrier:60 long_sb:10")
            && lines[1].ends_with("| __syncthreads();"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("    2  20.0%") && lines[2].ends_with("| float x = g[t];"),
        "{stdout}"
    );
    assert!(!stdout.contains("acc += x * y;"), "{stdout}");
    let share = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    let loads = share("loads ").unwrap();
    assert_eq!((loads[1], loads[4]), ("20.0%", "10.0%"), "{stdout}");
    let tail = share("tail ").unwrap();
    assert_eq!((tail[1], tail[4]), ("10.0%", "60.0%"), "{stdout}");
    let rest = share("(the rest) ").unwrap();
    assert_eq!((rest[2], rest[5]), ("70.0%", "30.0%"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_source_is_named() {
    let dir = temp_dir("missing");
    let csv = report(&dir);
    let Some(out) = run(&[&csv, &dir.join("nowhere")], &[]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("nowhere/k_ab12.cu") && stderr.contains("No such file"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
