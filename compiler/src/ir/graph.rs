//! The IR graph: a petgraph DAG of typed ops; edges carry which output feeds which input.

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::op::{Op, TensorType};
use super::IrError;

/// One op with its inferred output types and the scope it was lowered from.
#[derive(Debug, Clone)]
pub struct Node {
    pub op: Op,
    pub outputs: Vec<TensorType>,
    /// Where the node comes from, e.g. `layers.3.mixer` or `layers.3.mixer.mixers.kda`; empty for
    /// the model's embedding and head.
    pub scope: String,
    /// The decoder layer, if any.
    pub layer: Option<usize>,
}

/// An edge: output `output` of the source feeds input `input` of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub output: usize,
    pub input: usize,
}

/// A handle to one output of a node, as lowering passes values around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value {
    pub node: NodeIndex,
    pub output: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub g: StableDiGraph<Node, Port>,
}

impl Graph {
    pub fn new() -> Self {
        Graph::default()
    }

    /// Adds a node, inferring its output types from its inputs (the shape check).
    pub fn add(&mut self, op: Op, inputs: &[Value], scope: &str, layer: Option<usize>) -> Result<NodeIndex, IrError> {
        let types: Vec<TensorType> = inputs.iter().map(|v| self.ty(*v).clone()).collect();
        let outputs = op.infer(&types).map_err(|e| e.in_scope(scope))?;
        let node = self.g.add_node(Node {
            op,
            outputs,
            scope: scope.to_string(),
            layer,
        });
        for (i, v) in inputs.iter().enumerate() {
            self.g.add_edge(
                v.node,
                node,
                Port {
                    output: v.output,
                    input: i,
                },
            );
        }
        Ok(node)
    }

    /// The type of a value.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.g[v.node].outputs[v.output]
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.g[n]
    }

    /// A node's inputs, in input-port order.
    pub fn inputs(&self, n: NodeIndex) -> Vec<Value> {
        let mut edges: Vec<(usize, Value)> = self
            .g
            .edges_directed(n, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().input,
                    Value {
                        node: e.source(),
                        output: e.weight().output,
                    },
                )
            })
            .collect();
        edges.sort_by_key(|(i, _)| *i);
        edges.into_iter().map(|(_, v)| v).collect()
    }

    /// Nodes that read any output of `n`, with the port.
    pub fn users(&self, n: NodeIndex) -> Vec<(NodeIndex, Port)> {
        let mut users: Vec<(NodeIndex, Port)> = self
            .g
            .edges_directed(n, Direction::Outgoing)
            .map(|e| (e.target(), *e.weight()))
            .collect();
        users.sort_by_key(|(t, p)| (t.index(), p.input));
        users
    }

    /// Nodes in a deterministic topological order (ties broken by insertion order).
    pub fn topo_order(&self) -> Result<Vec<NodeIndex>, IrError> {
        let mut indegree: std::collections::HashMap<NodeIndex, usize> = self
            .g
            .node_indices()
            .map(|n| (n, self.g.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: std::collections::BTreeSet<usize> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| n.index())
            .collect();
        let mut order = Vec::with_capacity(self.g.node_count());
        while let Some(i) = ready.pop_first() {
            let n = NodeIndex::new(i);
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indegree.get_mut(&e.target()).ok_or(IrError::Cycle)?;
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target().index());
                }
            }
        }
        if order.len() != self.g.node_count() {
            return Err(IrError::Cycle);
        }
        Ok(order)
    }

    /// Graph inputs (`Op::Input`) in insertion order.
    pub fn graph_inputs(&self) -> Vec<(NodeIndex, &str, &TensorType)> {
        let mut v: Vec<_> = self
            .g
            .node_indices()
            .filter_map(|n| match &self.g[n].op {
                Op::Input { name, ty } => Some((n, name.as_str(), ty)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(n, _, _)| n.index());
        v
    }

    /// Graph outputs (`Op::Output`) in insertion order, with the value each one reads.
    pub fn graph_outputs(&self) -> Vec<(NodeIndex, &str)> {
        let mut v: Vec<_> = self
            .g
            .node_indices()
            .filter_map(|n| match &self.g[n].op {
                Op::Output { name } => Some((n, name.as_str())),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(n, _)| n.index());
        v
    }

    /// Checkpoint tensors the graph reads, in insertion order.
    pub fn weights(&self) -> Vec<(NodeIndex, &str, &[usize])> {
        let mut v: Vec<_> = self
            .g
            .node_indices()
            .filter_map(|n| match &self.g[n].op {
                Op::Weight { key, shape, .. } => Some((n, key.as_str(), shape.as_slice())),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(n, _, _)| n.index());
        v
    }

    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }
}
