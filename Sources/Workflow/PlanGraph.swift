import Foundation

/// The step graph of a plan with per-step counts: what `plan --format dot|mermaid` prints and what the
/// run report draws. Layers are longest-path depths (a step sits one layer right of its deepest input).
public struct PlanGraph: Sendable {
    public struct Node: Sendable {
        public var id: String
        public var kind: String
        public var new: Int, stale: Int, cached: Int
        public var layer: Int
    }

    public var nodes: [Node]
    /// (from, to): `to` reads `from`.
    public var edges: [(from: String, to: String)]

    init(_ plan: Plan) {
        let graph = StepGraph(plan.spec.steps)
        var layer: [String: Int] = [:]
        nodes = []
        edges = []
        // Plan steps are in topological order, so every input's layer is known when a step is reached.
        for step in plan.steps {
            let deps = graph.dependencies(of: step.spec)
            let l = deps.map { (layer[$0] ?? 0) + 1 }.max() ?? 0
            layer[step.spec.id] = l
            let c = step.counts
            nodes.append(Node(id: step.spec.id, kind: step.kind.name, new: c.new, stale: c.stale, cached: c.cached, layer: l))
            edges += deps.map { ($0, step.spec.id) }
        }
    }

    /// Graphviz: `storyloom plan WF.yaml --format dot | dot -Tsvg > plan.svg`.
    public var dot: String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, style=rounded, fontname=\"sans-serif\"];"]
        for n in nodes {
            let label = "\(n.id) (\(n.kind))\\nnew \(n.new) · stale \(n.stale) · cached \(n.cached)"
            lines.append("  \(q(n.id)) [label=\"\(label.replacingOccurrences(of: "\"", with: "\\\""))\"];")
        }
        for e in edges { lines.append("  \(q(e.from)) -> \(q(e.to));") }
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    /// Mermaid (renders in GitHub and many notebooks); node ids are positional, labels carry the step ids.
    public var mermaid: String {
        let index = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        func text(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "#quot;") }
        var lines = ["flowchart LR"]
        for (i, n) in nodes.enumerated() {
            lines.append("  s\(i)[\"\(text(n.id)) (\(text(n.kind)))<br/>new \(n.new) · stale \(n.stale) · cached \(n.cached)\"]")
        }
        for e in edges { if let a = index[e.from], let b = index[e.to] { lines.append("  s\(a) --> s\(b)") } }
        return lines.joined(separator: "\n")
    }
}

extension Plan {
    public var graph: PlanGraph { PlanGraph(self) }
}
