//! A plan as a readable tree. Decoder layers whose mappings are the same up to their own index
//! are shown once, as `blocks.[0..3, 8..11]` (inclusive ranges), with the layer index written
//! `{i}` inside source keys.
//!
//! ```text
//! model
//! ├── embed_tokens.weight ← model.embed_tokens.weight
//! ├── decoder.blocks.[0..3]
//! │   ├── mixer
//! │   │   ├── in_proj.weight ← concat(dim 0)
//! │   │   │   ├── init kaiming [128, 64]
//! │   │   │   └── model.decoder.blocks.{i}.mixer.v_proj.weight[0:16]
//! ...
//! ```

use super::expr::{Expr, Plan, SliceRange};

/// A node of the display tree: child segments in first-seen order, and the expression lines of
/// a leaf.
#[derive(Default)]
struct Node {
    children: Vec<(String, Node)>,
    leaf: Option<Vec<String>>,
}

impl Node {
    fn insert(&mut self, segments: &[String], lines: Vec<String>) {
        match segments.split_first() {
            None => self.leaf = Some(lines),
            Some((first, rest)) => {
                let pos = match self.children.iter().position(|(n, _)| n == first) {
                    Some(p) => p,
                    None => {
                        self.children.push((first.clone(), Node::default()));
                        self.children.len() - 1
                    }
                };
                self.children[pos].1.insert(rest, lines);
            }
        }
    }

    /// Joins chains of single children without a leaf (`decoder` → `blocks.[0..3]`).
    fn compact(self) -> Node {
        let children = self
            .children
            .into_iter()
            .map(|(name, child)| {
                let mut name = name;
                let mut child = child.compact();
                while child.leaf.is_none() && child.children.len() == 1 {
                    let Some((n, c)) = child.children.pop() else {
                        break;
                    };
                    name = format!("{name}.{n}");
                    child = c;
                }
                (name, child)
            })
            .collect();
        Node {
            children,
            leaf: self.leaf,
        }
    }

    fn render(&self, prefix: &str, out: &mut String) {
        let n = self.children.len();
        for (i, (name, child)) in self.children.iter().enumerate() {
            let last = i + 1 == n;
            let (branch, cont) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            out.push_str(prefix);
            out.push_str(branch);
            out.push_str(name);
            let child_prefix = format!("{prefix}{cont}");
            if let Some(lines) = &child.leaf {
                out.push_str(" ← ");
                if let Some((head, rest)) = lines.split_first() {
                    out.push_str(head);
                    out.push('\n');
                    for l in rest {
                        out.push_str(&child_prefix);
                        out.push_str(l);
                        out.push('\n');
                    }
                } else {
                    out.push('\n');
                }
            } else {
                out.push('\n');
            }
            child.render(&child_prefix, out);
        }
    }
}

fn fmt_slice(s: &SliceRange) -> String {
    let a = s.start.map_or(String::new(), |x| x.to_string());
    let b = s.stop.map_or(String::new(), |x| x.to_string());
    match s.step {
        Some(st) if st != 1 => format!("{a}:{b}:{st}"),
        _ => format!("{a}:{b}"),
    }
}

fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Writes `{i}` for the layer index `layer` after a `blocks` or `layers` segment of a key.
fn normalize_key(key: &str, layer: Option<usize>) -> String {
    let Some(layer) = layer else {
        return key.to_string();
    };
    let want = layer.to_string();
    let mut prev = "";
    let mut parts = Vec::new();
    for seg in key.split('.') {
        if seg == want && (prev == "blocks" || prev == "layers") {
            parts.push("{i}");
        } else {
            parts.push(seg);
        }
        prev = seg;
    }
    parts.join(".")
}

/// Lines of an expression: the head line, then `├──`-indented children.
fn expr_lines(e: &Expr, layer: Option<usize>) -> Vec<String> {
    let with_children = |head: String, kids: Vec<Vec<String>>| {
        let mut lines = vec![head];
        let n = kids.len();
        for (i, kid) in kids.into_iter().enumerate() {
            let last = i + 1 == n;
            for (j, l) in kid.into_iter().enumerate() {
                let p = match (j == 0, last) {
                    (true, false) => "├── ",
                    (true, true) => "└── ",
                    (false, false) => "│   ",
                    (false, true) => "    ",
                };
                lines.push(format!("{p}{l}"));
            }
        }
        lines
    };
    match e {
        Expr::Ref { key } => vec![normalize_key(key, layer)],
        Expr::Slice { expr, slices } => {
            let s: Vec<String> = slices.iter().map(fmt_slice).collect();
            let s = s.join(", ");
            match &**expr {
                Expr::Ref { key } => vec![format!("{}[{s}]", normalize_key(key, layer))],
                inner => with_children(format!("slice [{s}]"), vec![expr_lines(inner, layer)]),
            }
        }
        Expr::Concat { exprs, dim } => with_children(
            format!("concat(dim {dim})"),
            exprs.iter().map(|x| expr_lines(x, layer)).collect(),
        ),
        Expr::Init { shape, kind, .. } => {
            let params: Vec<String> = kind.params().iter().map(|(k, v)| format!("{k}={v}")).collect();
            let params = if params.is_empty() {
                String::new()
            } else {
                format!("({})", params.join(", "))
            };
            vec![format!("init {}{params} {}", kind.name(), fmt_shape(shape))]
        }
        Expr::Reshape { expr, shape } => {
            with_children(format!("reshape {}", fmt_shape(shape)), vec![expr_lines(expr, layer)])
        }
    }
}

/// Splits a key into display segments, keeping `name.weight` / `name.bias` together.
fn segments(parts: &[&str]) -> Vec<String> {
    let mut segs: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    if segs.len() >= 2 && matches!(segs.last().map(String::as_str), Some("weight" | "bias")) {
        if let (Some(last), Some(prev)) = (segs.pop(), segs.pop()) {
            segs.push(format!("{prev}.{last}"));
        }
    }
    segs
}

/// `(prefix up to "blocks", layer index, rest)` of a decoder-layer key.
fn split_layer(key: &str) -> Option<(String, usize, Vec<&str>)> {
    let parts: Vec<&str> = key.split('.').collect();
    let pos = parts.iter().position(|p| *p == "blocks")?;
    let layer = parts.get(pos + 1)?.parse::<usize>().ok()?;
    Some((parts[..=pos].join("."), layer, parts[pos + 2..].to_vec()))
}

/// `0..3, 5, 8..11` (inclusive runs).
pub fn format_ranges(layers: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &l in layers {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == l => *end = l,
            _ => runs.push((l, l)),
        }
    }
    runs.iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}..{b}") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan as a tree, layers with identical mappings collapsed.
pub fn render_tree(plan: &Plan) -> String {
    // (key segments, expression lines) of one mapping.
    type Entry = (Vec<String>, Vec<String>);
    // Per layer: its normalized mappings; identical layers form one group.
    struct Group {
        prefix: String,
        layers: Vec<usize>,
        entries: Vec<Entry>,
        signature: String,
    }
    enum Item {
        Plain(String),
        Layer(usize),
    }
    let mut items: Vec<Item> = Vec::new();
    let mut layer_entries: Vec<(String, usize, Vec<Entry>)> = Vec::new();
    for (key, expr) in plan.iter() {
        match split_layer(key) {
            Some((prefix, layer, rest)) => {
                let idx = match layer_entries.iter().position(|(p, l, _)| *p == prefix && *l == layer) {
                    Some(i) => i,
                    None => {
                        layer_entries.push((prefix.clone(), layer, Vec::new()));
                        items.push(Item::Layer(layer_entries.len() - 1));
                        layer_entries.len() - 1
                    }
                };
                layer_entries[idx]
                    .2
                    .push((segments(&rest), expr_lines(expr, Some(layer))));
            }
            None => items.push(Item::Plain(key.to_string())),
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of_layer = vec![0usize; layer_entries.len()];
    for (i, (prefix, layer, entries)) in layer_entries.iter().enumerate() {
        let signature = format!("{prefix}|{entries:?}");
        match groups.iter().position(|g| g.signature == signature) {
            Some(g) => {
                groups[g].layers.push(*layer);
                group_of_layer[i] = g;
            }
            None => {
                groups.push(Group {
                    prefix: prefix.clone(),
                    layers: vec![*layer],
                    entries: entries.clone(),
                    signature,
                });
                group_of_layer[i] = groups.len() - 1;
            }
        }
    }
    let mut root = Node::default();
    let mut shown = vec![false; groups.len()];
    for item in items {
        match item {
            Item::Plain(key) => {
                let parts: Vec<&str> = key.split('.').collect();
                let lines = plan.get(&key).map(|e| expr_lines(e, None)).unwrap_or_default();
                root.insert(&segments(&parts), lines);
            }
            Item::Layer(i) => {
                let g = group_of_layer[i];
                if shown[g] {
                    continue;
                }
                shown[g] = true;
                let group = &groups[g];
                let mut base: Vec<String> = group.prefix.split('.').map(str::to_string).collect();
                if let Some(last) = base.last_mut() {
                    *last = format!("{last}.[{}]", format_ranges(&group.layers));
                }
                for (segs, lines) in &group.entries {
                    let mut full = base.clone();
                    full.extend(segs.iter().cloned());
                    root.insert(&full, lines.clone());
                }
            }
        }
    }
    let root = root.compact();
    let mut out = format!(
        "plan {} → {} ({} tensors)\n",
        plan.source_format,
        plan.target_format,
        plan.len()
    );
    for (name, child) in &root.children {
        out.push_str(name);
        if let Some(lines) = &child.leaf {
            out.push_str(" ← ");
            out.push_str(&lines.join("\n    "));
        }
        out.push('\n');
        child.render("", &mut out);
    }
    out
}
