import Foundation

/// "Did you mean" suggestions by edit distance.
public enum Suggest {
    public static func hint(_ word: String, _ candidates: [String]) -> String {
        guard let best = nearest(word, candidates) else { return "" }
        return " (did you mean \"\(best)\"?)"
    }

    public static func nearest(_ word: String, _ candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        // A near miss is within a third of the word (at least one edit), and never a whole rewrite.
        return best.1 <= max(1, min(3, word.count / 3)) && best.1 < word.count ? best.0 : nil
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps
    /// ("widht" is one edit from "width").
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
