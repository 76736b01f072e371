import Foundation

/// Number formatting shared by every page, so a score reads the same everywhere.
public enum GalleryFormat {
    /// A score with three decimals; NaN is "—", infinities "∞" / "−∞".
    public static func score(_ value: Double) -> String {
        fixed(value, decimals: 3)
    }

    /// A probability as a percentage with one decimal ("87.5 %").
    public static func percent(_ value: Double) -> String {
        guard value.isFinite else { return nonFinite(value) }
        return fixed(value * 100, decimals: 1) + " %"
    }

    /// A duration: milliseconds below a second, seconds below a minute, then minutes and seconds.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return nonFinite(seconds) }
        if seconds < 1 { return fixed(seconds * 1000, decimals: 0) + " ms" }
        if seconds < 60 { return fixed(seconds, decimals: 2) + " s" }
        let whole = Int(seconds.rounded())
        return "\(whole / 60) min \(whole % 60) s"
    }

    /// A finite value with a fixed number of decimals; "-0.000" is shown as "0.000".
    static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return nonFinite(value) }
        let text = String(format: "%.\(decimals)f", value)
        if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) {
            return String(text.dropFirst())
        }
        return text
    }

    private static func nonFinite(_ value: Double) -> String {
        if value.isNaN { return "—" }
        return value > 0 ? "∞" : "−∞"
    }

    /// Badge colour class for a score: scores are read on a 0…1 scale (CLIP similarity,
    /// probabilities, recall); values outside it or non-finite get the neutral style.
    static func badgeClass(_ value: Double) -> String {
        guard value.isFinite, value >= 0, value <= 1 else { return "badge neutral" }
        if value < 0.4 { return "badge low" }
        if value < 0.6 { return "badge mid" }
        return "badge high"
    }
}
