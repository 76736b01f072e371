import Foundation
import HTMLInspection
import Testing
@testable import Gallery

@Suite struct ChartTests {
    @Test func histogramBinsFiniteValues() {
        let histogram = Histogram(values: SampleGallery.histogramValues + [.nan, -.infinity])
        #expect(histogram.counts == SampleGallery.histogramCounts)
        #expect(histogram.nonFinite == 2)
        #expect(histogram.lower == 0.1)
        #expect(histogram.upper == 1.0)
        #expect(histogram.labels == ["0.10–0.33", "0.33–0.55", "0.55–0.78", "0.78–1.00"])
        #expect(Histogram(values: [0.5, 0.5, 0.5]).counts == [3])
        #expect(Histogram(values: []).counts.isEmpty)
        #expect(Histogram(values: [0, 1, 2, 3], binCount: 2).counts == [2, 2])
    }

    @Test func reportHistogramsHaveOneBarPerBinWithComputedHeights() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let document = try SampleGallery(sourceFolder: temp.appendingPathComponent("src")).document()
        let folder = temp.appendingPathComponent("gallery")
        _ = try GalleryWriter.write(document, to: folder)
        let report = try HTMLInspector(path: folder.appendingPathComponent("report.html").path)

        let base = "//div[@class='histogram'][@data-series='clip_gill_full']"
        let svg = try #require(report.select(base + "//svg").first)
        let yMax = try #require(svg.attributes["data-y-max"].flatMap(Double.init))
        let plotHeight = try #require(svg.attributes["data-plot-height"].flatMap(Double.init))
        #expect(yMax == 4)  // the largest bin holds 4 values; 4 is already a round axis end
        let bars = report.select(base + "//rect[contains(@class, 'bar')]")
        #expect(bars.count == SampleGallery.histogramCounts.count)
        for (bar, count) in zip(bars, SampleGallery.histogramCounts) {
            #expect(bar.attributes["data-value"].flatMap(Double.init) == Double(count))
            let height = try #require(bar.attributes["height"].flatMap(Double.init))
            #expect(abs(height - Double(count) / yMax * plotHeight) < 0.01)
        }
        // Second series: 5 finite values → Sturges 4 bins over [0.5, 0.61]; NaN and ∞ are reported.
        let second = "//div[@class='histogram'][@data-series='clip_sd_last']"
        let expected = Histogram(values: [0.5, 0.52, 0.54, 0.6, 0.61]).counts
        #expect(expected == [2, 1, 0, 2])
        #expect(report.values(second + "//rect/@data-value").compactMap(Double.init) == expected.map(Double.init))
        #expect(report.values(second + "//p") == ["2 non-finite values not shown"])
        // Run-level charts: the line chart draws its NaN as a gap, the bar chart groups two series.
        #expect(report.count("//section[@id='charts']//figure") == 2)
        #expect(report.count("//section[@id='charts']//polyline") == 3)
        #expect(report.count("//section[@id='charts']//rect[contains(@class,'bar')]") == 6)
        #expect(report.values("//section[@id='charts']//div[@class='legend']/span") == ["GILL", "SD", "GILL", "CLIP"])
    }

    @Test func lineLayoutMapsValuesToTheAxis() {
        let chart = Chart(title: "CLIP similarity vs context length", xLabels: ["1", "2", "3", "4"],
                          series: [("GILL", [0.6, 0.62, .nan, 0.65]), ("SD", [0.55, 0.56, 0.58, 0.6, 0.99])],
                          yLabel: "CLIP sim")
        let layout = chart.layout
        #expect(layout.yMin == 0.55)
        #expect(abs(layout.yMax - 0.65) < 1e-12)
        #expect(layout.yTicks.count == 5)
        #expect(layout.lines[0].map { $0.map(\.index) } == [[0, 1], [3]])
        #expect(layout.lines[1].map { $0.map(\.index) } == [[0, 1, 2, 3]])  // the fifth value has no label
        let plot = layout.plot
        for run in layout.lines.flatMap({ $0 }) {
            for point in run {
                let expected = plot.y + plot.height - (point.value - layout.yMin) / (layout.yMax - layout.yMin) * plot.height
                #expect(abs(point.y - expected) < 1e-9)
                #expect(abs(point.x - (plot.x + (Double(point.index) + 0.5) * plot.width / 4)) < 1e-9)
            }
        }
        #expect(layout.bars.isEmpty)
        let svg = chart.svg()
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains("<polyline"))
    }

    @Test func barLayoutStartsAtZeroAndHandlesNegatives() {
        let chart = Chart(ChartSpec(title: "delta", xLabels: ["a", "b"], series: [("d", [-1, 3])], yLabel: "Δ",
                                    kind: .bar))
        let layout = chart.layout
        #expect(layout.yMin == -1)
        #expect(layout.yMax == 3)
        let zero = layout.plot.y + layout.plot.height * 3 / 4
        #expect(abs(layout.bars[0].y - zero) < 1e-9)
        #expect(abs(layout.bars[0].height - layout.plot.height / 4) < 1e-9)
        #expect(abs(layout.bars[1].y + layout.bars[1].height - zero) < 1e-9)
        #expect(abs(layout.bars[1].height - layout.plot.height * 3 / 4) < 1e-9)
        // No finite value: an empty 0…1 axis, nothing drawn, no crash.
        let empty = Chart(title: "none", xLabels: ["x"], series: [("s", [.nan])], yLabel: "y", kind: .bar).layout
        #expect(empty.bars.isEmpty)
        #expect(empty.yMin == 0 && empty.yMax == 1)
    }

    @Test func niceScaleRoundsToReadableTicks() {
        let scale = NiceScale(low: 0, high: 7)
        #expect(scale.step == 2)
        #expect(scale.ticks == [0, 2, 4, 6, 8])
        #expect(NiceScale.decimals(for: [0, 0.25, 0.5]) == 2)
        #expect(NiceScale.decimals(for: [0, 2, 4]) == 0)
        #expect(NiceScale(low: 3, high: 3).ticks.count >= 2)
        #expect(NiceScale(low: 0, high: 2, integral: true).ticks == [0, 1, 2])
        #expect(NiceScale(low: 0, high: 9, integral: true).ticks == [0, 2, 4, 6, 8, 10])
        #expect(NiceScale(low: 0, high: 2).ticks == [0, 0.5, 1, 1.5, 2])
    }
}
