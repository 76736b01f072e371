import Foundation
import Plot

/// The workflow's steps as a graph, as data: one node per step with its run counts, edges from the steps
/// each reads, layers left to right (a step one layer right of its deepest input).
public struct StepGraphSpec: Sendable {
    public struct Node: Sendable {
        public var id: String, kind: String
        public var ran: Int, cached: Int, failed: Int
        public var layer: Int
        public init(id: String, kind: String, ran: Int, cached: Int, failed: Int, layer: Int) {
            self.id = id
            self.kind = kind
            self.ran = ran
            self.cached = cached
            self.failed = failed
            self.layer = layer
        }
    }

    public var nodes: [Node]
    /// (from, to) node indices: `to` reads `from`.
    public var edges: [(from: Int, to: Int)]

    public init(nodes: [Node], edges: [(from: Int, to: Int)]) {
        self.nodes = nodes
        self.edges = edges
    }
}

/// Draws a ``StepGraphSpec`` as inline SVG (no script): boxes in layer columns, arrows between them.
struct StepGraphFigure {
    let spec: StepGraphSpec
    static let boxWidth = 170.0, boxHeight = 46.0, columnGap = 50.0, rowGap = 16.0, margin = 8.0

    /// Each node's top-left corner.
    var positions: [(x: Double, y: Double)] {
        var rowInLayer: [Int: Int] = [:]
        return spec.nodes.map { n in
            let row = rowInLayer[n.layer, default: 0]
            rowInLayer[n.layer] = row + 1
            return (Self.margin + Double(n.layer) * (Self.boxWidth + Self.columnGap),
                    Self.margin + Double(row) * (Self.boxHeight + Self.rowGap))
        }
    }

    func figure() -> Node<HTML.BodyContext> {
        let pos = positions
        let width = (pos.map(\.x).max() ?? 0) + Self.boxWidth + Self.margin
        let height = (pos.map(\.y).max() ?? 0) + Self.boxHeight + Self.margin
        func n(_ v: Double) -> String { String(format: "%.1f", v) }
        var nodes: [Node<HTML.BodyContext>] = [
            .el("title", text: "Step graph"),
            .el("defs", [], [.el("marker", [("id", "arrow"), ("viewBox", "0 0 10 10"), ("refX", "10"), ("refY", "5"),
                                            ("markerWidth", "7"), ("markerHeight", "7"), ("orient", "auto-start-reverse")],
                                 [.el("path", [("d", "M 0 0 L 10 5 L 0 10 z"), ("class", "edge-head")])])]),
        ]
        for e in spec.edges where spec.nodes.indices.contains(e.from) && spec.nodes.indices.contains(e.to) {
            let a = pos[e.from], b = pos[e.to]
            let x1 = a.x + Self.boxWidth, y1 = a.y + Self.boxHeight / 2, x2 = b.x, y2 = b.y + Self.boxHeight / 2
            let mid = (x1 + x2) / 2
            nodes.append(.el("path", [("class", "edge"), ("marker-end", "url(#arrow)"),
                                      ("d", "M \(n(x1)) \(n(y1)) C \(n(mid)) \(n(y1)), \(n(mid)) \(n(y2)), \(n(x2)) \(n(y2))")]))
        }
        for (i, node) in spec.nodes.enumerated() {
            let p = pos[i]
            nodes.append(.el("g", [("class", node.failed > 0 ? "step-node failed" : "step-node"), ("data-step", node.id)], [
                .el("rect", [("x", n(p.x)), ("y", n(p.y)), ("width", n(Self.boxWidth)), ("height", n(Self.boxHeight)),
                             ("rx", "6")]),
                .el("text", [("class", "step-id"), ("x", n(p.x + 8)), ("y", n(p.y + 18))], text: "\(node.id) · \(node.kind)"),
                .el("text", [("class", "step-counts"), ("x", n(p.x + 8)), ("y", n(p.y + 36))],
                    text: "ran \(node.ran) · cached \(node.cached)" + (node.failed > 0 ? " · failed \(node.failed)" : "")),
            ]))
        }
        return .el("figure", [("class", "step-graph")], [
            .el("svg", [("xmlns", "http://www.w3.org/2000/svg"), ("viewBox", "0 0 \(n(width)) \(n(height))"),
                        ("width", n(width)), ("height", n(height)), ("role", "img"), ("aria-label", "Step graph")], nodes),
        ])
    }
}
