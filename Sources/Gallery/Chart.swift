import Foundation
import Plot

/// A line or bar chart drawn as inline SVG: x labels along the bottom, one or more series.
///
/// Used for score histograms in the run report and for run-level ``ChartSpec``s such as
/// "CLIP similarity vs context length". ``layout`` exposes the computed geometry so callers and
/// tests can check what is drawn.
public struct Chart: Sendable {
    public var spec: ChartSpec
    /// Size of the whole SVG in CSS pixels (it scales down with the page).
    public var width: Double
    public var height: Double

    public init(_ spec: ChartSpec, width: Double = 640, height: Double = 260) {
        self.spec = spec
        self.width = width
        self.height = height
    }

    public init(title: String, xLabels: [String], series: [(name: String, values: [Double])], yLabel: String,
                kind: ChartSpec.Kind = .line) {
        self.init(ChartSpec(title: title, xLabels: xLabels, series: series, yLabel: yLabel, kind: kind))
    }

    /// A bar chart of how many values fall in each bin of a ``Histogram``.
    public static func histogram(title: String, values: [Double], binCount: Int? = nil) -> Chart {
        let histogram = Histogram(values: values, binCount: binCount)
        return Chart(ChartSpec(title: title, xLabels: histogram.labels,
                               series: [(name: "count", values: histogram.counts.map(Double.init))],
                               yLabel: "items", kind: .bar))
    }

    /// The plotted rectangle inside the SVG.
    public struct PlotArea: Sendable, Equatable {
        public var x: Double, y: Double, width: Double, height: Double
    }

    /// One drawn bar: which series and x slot, its value and rectangle.
    public struct Bar: Sendable, Equatable {
        public var series: Int, index: Int, value: Double
        public var x: Double, y: Double, width: Double, height: Double
    }

    /// One drawn point of a line series.
    public struct Point: Sendable, Equatable {
        public var index: Int, value: Double, x: Double, y: Double
    }

    /// Everything the SVG draws, in SVG coordinates (y grows downwards).
    public struct Layout: Sendable {
        public var plot: PlotArea
        public var yMin: Double
        public var yMax: Double
        public var yTicks: [Double]
        public var bars: [Bar]
        /// Per series, runs of consecutive finite points (a NaN value splits the line).
        public var lines: [[[Point]]]
        /// Centre x of each label slot.
        public var slotCentres: [Double]
    }

    /// Computes axes and geometry. Values beyond `xLabels.count` are ignored; non-finite values
    /// are not drawn; with no finite value the y axis spans 0…1.
    public var layout: Layout {
        let plot = PlotArea(x: 56, y: 14, width: max(width - 56 - 16, 10), height: max(height - 14 - 44, 10))
        let slots = spec.xLabels.count
        let finite = spec.series.flatMap { $0.values.prefix(slots) }.filter(\.isFinite)
        var low = finite.min() ?? 0
        var high = finite.max() ?? 1
        if spec.kind == .bar { low = min(low, 0); high = max(high, 0) }
        // Counts (histograms) get whole-number ticks.
        let integral = !finite.isEmpty && finite.allSatisfy { $0 == $0.rounded() }
        let scale = NiceScale(low: low, high: high, integral: integral)
        let span = scale.max - scale.min
        func yPosition(_ value: Double) -> Double {
            plot.y + plot.height - (value - scale.min) / span * plot.height
        }
        let slotWidth = slots > 0 ? plot.width / Double(slots) : plot.width
        let centres = (0..<slots).map { plot.x + (Double($0) + 0.5) * slotWidth }
        var bars: [Bar] = []
        var lines: [[[Point]]] = []
        switch spec.kind {
        case .bar:
            let groupWidth = slotWidth * 0.8
            let barWidth = spec.series.isEmpty ? 0 : groupWidth / Double(spec.series.count)
            let base = yPosition(max(scale.min, min(0, scale.max)))
            for (s, series) in spec.series.enumerated() {
                for (i, value) in series.values.prefix(slots).enumerated() where value.isFinite {
                    let top = yPosition(value)
                    bars.append(Bar(series: s, index: i, value: value,
                                    x: centres[i] - groupWidth / 2 + Double(s) * barWidth, y: min(top, base),
                                    width: barWidth, height: abs(base - top)))
                }
            }
        case .line:
            for series in spec.series {
                var runs: [[Point]] = []
                var run: [Point] = []
                for (i, value) in series.values.prefix(slots).enumerated() {
                    if value.isFinite {
                        run.append(Point(index: i, value: value, x: centres[i], y: yPosition(value)))
                    } else if !run.isEmpty {
                        runs.append(run)
                        run = []
                    }
                }
                if !run.isEmpty { runs.append(run) }
                lines.append(runs)
            }
        }
        return Layout(plot: plot, yMin: scale.min, yMax: scale.max, yTicks: scale.ticks, bars: bars,
                      lines: lines, slotCentres: centres)
    }

    /// The chart as an SVG document fragment (`<svg>…</svg>`).
    public func svg() -> String {
        svgNode().render()
    }

    /// The chart as a `<figure>` with a caption, the inline SVG and a legend for several series.
    func figure() -> BodyNode {
        var children: [BodyNode] = [.el("figcaption", text: spec.title), svgNode()]
        if spec.series.count > 1 {
            children.append(.el("div", [("class", "legend")], spec.series.enumerated().map { s, series in
                .el("span", [("class", "key s\(s % 6)")], text: series.name)
            }))
        }
        return .el("figure", [("class", "chart")], children)
    }

    /// The inline `<svg>` element.
    public func svgNode() -> Node<HTML.BodyContext> {
        let layout = self.layout
        let plot = layout.plot
        var nodes: [BodyNode] = []
        nodes.append(.el("title", text: spec.title))
        // Grid lines and y tick labels.
        let span = layout.yMax - layout.yMin
        let decimals = NiceScale.decimals(for: layout.yTicks)
        for tick in layout.yTicks {
            let y = plot.y + plot.height - (tick - layout.yMin) / span * plot.height
            nodes.append(.el("line", [("class", "grid"), ("x1", n(plot.x)), ("x2", n(plot.x + plot.width)),
                                      ("y1", n(y)), ("y2", n(y))]))
            nodes.append(.el("text", [("class", "tick"), ("x", n(plot.x - 6)), ("y", n(y + 3.5)),
                                      ("text-anchor", "end")], text: GalleryFormat.fixed(tick, decimals: decimals)))
        }
        // X labels, thinned so they do not overlap (about 64 px each).
        let stride = max(1, Int((Double(spec.xLabels.count) * 64 / plot.width).rounded(.up)))
        for (i, label) in spec.xLabels.enumerated() where i % stride == 0 {
            nodes.append(.el("text", [("class", "tick"), ("x", n(layout.slotCentres[i])),
                                      ("y", n(plot.y + plot.height + 16)), ("text-anchor", "middle")], text: label))
        }
        nodes.append(.el("text", [("class", "axis-label"), ("x", n(14)), ("y", n(plot.y + plot.height / 2)),
                                  ("text-anchor", "middle"),
                                  ("transform", "rotate(-90 14 \(n(plot.y + plot.height / 2)))")], text: spec.yLabel))
        for bar in layout.bars {
            let name = spec.series[bar.series].name
            nodes.append(.el("rect", [("class", "bar s\(bar.series % 6)"), ("x", n(bar.x)), ("y", n(bar.y)),
                                      ("width", n(bar.width)), ("height", n(bar.height)),
                                      ("data-series", name), ("data-index", String(bar.index)),
                                      ("data-value", String(bar.value))],
                             [.el("title", text: "\(spec.xLabels[bar.index]) · \(name): \(valueText(bar.value))")]))
        }
        for (s, runs) in layout.lines.enumerated() {
            let name = spec.series[s].name
            for run in runs {
                let points = run.map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " ")
                nodes.append(.el("polyline", [("class", "series s\(s % 6)"), ("points", points),
                                              ("data-series", name)]))
                for point in run {
                    nodes.append(.el("circle", [("class", "dot s\(s % 6)"), ("cx", n(point.x)), ("cy", n(point.y)),
                                                ("r", "3.5"), ("data-series", name),
                                                ("data-index", String(point.index)),
                                                ("data-value", String(point.value))],
                                     [.el("title", text: "\(spec.xLabels[point.index]) · \(name): \(valueText(point.value))")]))
                }
            }
        }
        nodes.append(.el("line", [("class", "axis"), ("x1", n(plot.x)), ("x2", n(plot.x + plot.width)),
                                  ("y1", n(plot.y + plot.height)), ("y2", n(plot.y + plot.height))]))
        return .el("svg", [("xmlns", "http://www.w3.org/2000/svg"), ("class", "chart-svg"),
                           ("viewBox", "0 0 \(n(width)) \(n(height))"), ("role", "img"),
                           ("data-kind", spec.kind.rawValue), ("data-y-min", String(layout.yMin)),
                           ("data-y-max", String(layout.yMax)), ("data-plot-height", n(plot.height))], nodes)
    }

    private func valueText(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : GalleryFormat.score(value)
    }

    private func n(_ value: Double) -> String {
        GalleryFormat.fixed(value, decimals: 2)
    }
}

/// An axis range extended to round numbers, with 3–6 ticks of step 1, 2, 2.5 or 5 × 10^k.
struct NiceScale {
    var min: Double
    var max: Double
    var step: Double

    /// With `integral`, the step is a whole number (ticks of counts read 0, 1, 2 rather than 0.5).
    init(low: Double, high: Double, integral: Bool = false) {
        var low = low, high = high
        if high - low < 1e-12 {
            let pad = Swift.max(abs(low) * 0.1, 0.5)
            (low, high) = (low == 0 ? 0 : low - pad, high + pad)
        }
        let raw = (high - low) / 4
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        var step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        if integral { step = step < 1 ? 1 : step == 2.5 ? 2 : step.rounded() }
        self.step = step
        self.min = (low / step).rounded(.down) * step
        self.max = (high / step).rounded(.up) * step
    }

    var ticks: [Double] {
        let count = Int(((max - min) / step).rounded())
        return (0...count).map { min + Double($0) * step }
    }

    /// Decimals needed to show every tick exactly (2.5 × 10^k needs one more than 1 × 10^k).
    static func decimals(for ticks: [Double]) -> Int {
        guard ticks.count > 1 else { return 0 }
        let step = abs(ticks[1] - ticks[0])
        guard step > 0, step.isFinite else { return 0 }
        var decimals = Swift.max(0, Int(-log10(step).rounded(.down)))
        if abs((step * pow(10, Double(decimals))).rounded() - step * pow(10, Double(decimals))) > 1e-9 {
            decimals += 1
        }
        return Swift.min(decimals, 6)
    }
}

/// Counts of finite values in equal-width bins between their minimum and maximum.
public struct Histogram: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var counts: [Int]
    /// NaN and infinite values, counted but not binned.
    public var nonFinite: Int

    /// Bins `values`; the bin count defaults to Sturges' rule (⌈log2 n⌉ + 1, at most 20).
    /// The last bin is closed, so the maximum falls in it; equal values make one bin.
    public init(values: [Double], binCount: Int? = nil) {
        let finite = values.filter(\.isFinite)
        nonFinite = values.count - finite.count
        lower = finite.min() ?? 0
        upper = finite.max() ?? 0
        guard !finite.isEmpty else {
            counts = []
            return
        }
        let bins = upper > lower
            ? Swift.max(1, binCount ?? Swift.min(20, Int(log2(Double(finite.count)).rounded(.up)) + 1))
            : 1
        var counts = [Int](repeating: 0, count: bins)
        let width = (upper - lower) / Double(bins)
        for value in finite {
            let index = width > 0 ? Int(((value - lower) / width).rounded(.down)) : 0
            counts[Swift.min(Swift.max(index, 0), bins - 1)] += 1
        }
        self.counts = counts
    }

    /// Lower edge of bin `index`.
    public func edge(_ index: Int) -> Double {
        counts.isEmpty ? lower : lower + (upper - lower) * Double(index) / Double(counts.count)
    }

    /// "low–high" per bin, with enough decimals to tell neighbouring edges apart.
    public var labels: [String] {
        guard !counts.isEmpty else { return [] }
        let width = (upper - lower) / Double(counts.count)
        let decimals = width > 0 ? Swift.min(6, Swift.max(0, Int(-log10(width).rounded(.down)) + 1)) : 3
        return counts.indices.map { i in
            GalleryFormat.fixed(edge(i), decimals: decimals) + "–" + GalleryFormat.fixed(edge(i + 1), decimals: decimals)
        }
    }
}
