import ArgumentParser
import CanonicalJSON
import Foundation
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

/// The page: plain HTML and inline SVG, styled by one inline stylesheet.
struct ReportPage {
    let events: [KnownEvent]
    let pov: PointOfView
    let view: String
    let ledger: String
    let head: String

    func html() -> String {
        let asOf = pov.asOf
        let facilities = Replay.facilities(events, asOf: asOf)
        let programs = Replay.programs(events, asOf: asOf)
        let targets = Replay.targets(events, asOf: asOf)
        // Each facility's events and targets, gathered once.
        var eventsBySubject: [String: [KnownEvent]] = [:]
        for e in events where e.date <= asOf { eventsBySubject[e.subject, default: []].append(e) }
        var targetsBySubject: [String: [TargetStatus]] = [:]
        for t in targets { targetsBySubject[t.subject, default: []].append(t) }
        var body = ""
        body += "<header><h1>Milestones</h1><p class=\"view\">\(esc(view))</p>"
        body += "<p class=\"meta\">Ledger <code>\(esc(ledger))</code>, \(esc(head)). Every mark links to its source.</p></header>\n"
        body += "<section id=\"programs\"><h2>Programs</h2>"
        if programs.isEmpty { body += "<p>(none)</p>" }
        for p in programs {
            let byPhase = FacilityPhase.allCases.compactMap { ph in p.facilities[ph].map { "\($0) \(ph.rawValue.replacingOccurrences(of: "_", with: " "))" } }
            body += "<div class=\"program\"><h3>\(esc(p.name ?? p.subject))</h3><p><code>\(esc(p.subject))</code>"
            body += p.sponsor.map { ", sponsored by \(esc($0))" } ?? ""
            body += ". Committed: <strong>\(esc(humanAmount(p.committed) ?? "–"))</strong>"
            body += p.horizon.map { ", by \($0)" } ?? ""
            body += ". Facilities: \(p.facilities.values.reduce(0, +))" + (byPhase.isEmpty ? "" : " (\(esc(byPhase.joined(separator: ", "))))") + ".</p></div>"
        }
        body += "</section>\n<section id=\"targets\"><h2>Targets</h2><div class=\"scroll\"><table><thead><tr>"
        body += ["subject", "milestone", "due", "actual", "state", "slip (days)", "from original", "revisions"].map { "<th>\($0)</th>" }.joined()
        body += "</tr></thead><tbody>"
        for t in targets {
            let actual = t.actualLatest.map { actualLabel(Rules.Actual(earliest: t.actual, latest: $0, impliedBy: t.impliedBy)) } ?? "–"
            body += "<tr class=\"\(t.state.rawValue)\"><td><a href=\"#f-\(esc(t.subject))\">\(esc(t.subject))</a></td><td>\(esc(t.milestone))</td>"
            body += "<td>\(t.dueEarliest) … \(t.dueLatest)</td><td>\(esc(actual))</td><td class=\"state\">\(t.state.rawValue)</td>"
            body += "<td>\(t.slipDays.map(String.init) ?? "–")</td><td>\(t.slipFromOriginalDays.map(String.init) ?? "–")</td><td>\(t.revisions)</td></tr>"
        }
        if targets.isEmpty { body += "<tr><td colspan=\"8\">(none)</td></tr>" }
        body += "</tbody></table></div></section>\n<section id=\"facilities\"><h2>Facilities</h2>\n"
        for f in facilities {
            body += facility(f, events: eventsBySubject[f.subject] ?? [], targets: targetsBySubject[f.subject] ?? [])
        }
        if facilities.isEmpty { body += "<p>(none)</p>" }
        body += "</section>\n"
        body += "<footer><p>Legend: ● a milestone known to the day; a bar, one known to its month, quarter or year (drawn as wide as its precision); "
        body += "bands: target windows (faded: earlier windows, revised since); <span class=\"met\">met</span>, <span class=\"missed\">missed</span>, "
        body += "<span class=\"undetermined\">undetermined</span> (the sources are too coarse to tell), <span class=\"overdue\">overdue</span> (the red span runs from the due date to the view's date).</p></footer>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Milestones — \(esc(view))</title>
            <style>\(ReportPage.style)</style></head>
            <body>
            \(body)
            </body></html>

            """
    }

    /// One facility: its heading and its timeline.
    func facility(_ f: FacilityStatus, events own: [KnownEvent], targets: [TargetStatus]) -> String {
        let marks = own.filter { FacilityPhase(reachedBy: $0.type) != nil || $0.type == .productionMilestone || $0.type.isControl }
        let targetEvents = own.filter { $0.type.isTarget }
        // The time axis: every date drawn, and the view's date, with a margin.
        var dates = marks.flatMap { [$0.date, $0.date.end(at: $0.precision)] } + [pov.asOf]
        for t in targetEvents {
            if let due = t.object["due"]?.objectValue {
                dates += [due["earliest"], due["latest"]].compactMap { $0?.stringValue.flatMap(CalendarDate.init) }
            }
        }
        // Whole years, from the first date's to the end of the last's (no further than 9999-12-31).
        let lo = CalendarDate(year: dates.min()!.components.year, month: 1, day: 1)!
        let lastYear = dates.max()!.components.year
        let hi = CalendarDate(year: lastYear + 1, month: 1, day: 1) ?? CalendarDate(year: lastYear, month: 12, day: 31)!
        let (left, width) = (170.0, 800.0)
        func x(_ d: CalendarDate) -> Double { left + width * Double(d.days - lo.days) / Double(max(1, hi.days - lo.days)) }
        func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
        let milestones = Array(Set(targetEvents.compactMap { $0.object["milestone"]?.stringValue })).sorted()
        let rowHeight = 34.0
        let height = 48 + rowHeight * Double(1 + milestones.count) + 30
        // A gutter on the right for the targets' states.
        var svg = "<svg class=\"timeline\" data-subject=\"\(esc(f.subject))\" viewBox=\"0 0 \(fmt(left + width + 100)) \(fmt(height))\" role=\"img\" aria-label=\"Timeline of \(esc(f.name ?? f.subject))\">"
        svg += "<defs><pattern id=\"hatch-\(esc(f.subject))\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" class=\"undetermined-bg\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" class=\"hatch\"/></pattern></defs>"
        // Year and quarter ticks.
        var next: CalendarDate? = lo
        while let year = next, year <= hi {
            svg += "<line class=\"tick\" x1=\"\(fmt(x(year)))\" x2=\"\(fmt(x(year)))\" y1=\"20\" y2=\"\(fmt(height - 24))\"/>"
            svg += "<text class=\"year\" x=\"\(fmt(x(year)))\" y=\"\(fmt(height - 8))\">\(year.components.year)</text>"
            for q in 1...3 {
                if let d = year.adding(months: 3 * q), d < hi { svg += "<line class=\"qtick\" x1=\"\(fmt(x(d)))\" x2=\"\(fmt(x(d)))\" y1=\"20\" y2=\"\(fmt(height - 24))\"/>" }
            }
            next = year.adding(months: 12)  // nil after year 9999: the loop ends
        }
        // The view's date.
        svg += "<line class=\"asof\" x1=\"\(fmt(x(pov.asOf)))\" x2=\"\(fmt(x(pov.asOf)))\" y1=\"14\" y2=\"\(fmt(height - 24))\"/>"
        svg += "<text class=\"asof-label\" x=\"\(fmt(x(pov.asOf)))\" y=\"12\">as of \(pov.asOf)</text>"
        // Row 0: the milestones themselves.
        let y0 = 44.0
        svg += "<text class=\"row\" x=\"6\" y=\"\(fmt(y0 + 5))\">milestones</text>"
        for (n, e) in marks.enumerated() {
            // A short name beside each mark, above and below in turn so that close ones do not collide.
            let short = (e.type == .productionMilestone ? e.object["milestone"]?.stringValue : nil)
                ?? e.type.rawValue.replacingOccurrences(of: "facility.", with: "").replacingOccurrences(of: "construction.", with: "constr. ")
                    .replacingOccurrences(of: "production.", with: "prod. ")
            svg += "<text class=\"mark-label\" x=\"\(fmt(x(e.date)))\" y=\"\(fmt(n % 2 == 0 ? y0 - 9 : y0 + 17))\">\(esc(String(short.prefix(24))))</text>"
            let label = "\(e.date.label(at: e.precision)) — \(e.type.rawValue)\(e.object["milestone"]?.stringValue.map { ": \($0)" } ?? "")"
            let cls = e.type.isControl ? "control" : (e.type == .productionMilestone ? "note" : "lifecycle")
            let shape: String
            if e.precision == .day {
                shape = "<circle class=\"mark \(cls)\" cx=\"\(fmt(x(e.date)))\" cy=\"\(fmt(y0))\" r=\"5\"/>"
            } else {
                let w = max(3, x(e.date.end(at: e.precision).adding(days: 1)) - x(e.date))
                shape = "<rect class=\"mark \(cls) coarse\" x=\"\(fmt(x(e.date)))\" y=\"\(fmt(y0 - 5))\" width=\"\(fmt(w))\" height=\"10\" rx=\"2\"/>"
            }
            svg += linked(e, label: label, shape)
        }
        // One row per target milestone: its windows, its actual or implied interval, its slip.
        for (k, m) in milestones.enumerated() {
            let y = y0 + rowHeight * Double(k + 1)
            svg += "<text class=\"row\" x=\"6\" y=\"\(fmt(y + 5))\">\(esc(m.replacingOccurrences(of: "production.", with: "prod. ").replacingOccurrences(of: "construction.", with: "constr. ")))</text>"
            let versions = targetEvents.filter { $0.object["milestone"]?.stringValue == m }.sorted { ($0.date, $0.seq) < ($1.date, $1.seq) }
            for (i, t) in versions.enumerated() {
                guard let due = t.object["due"]?.objectValue, let e = due["earliest"]?.stringValue.flatMap(CalendarDate.init),
                      let l = due["latest"]?.stringValue.flatMap(CalendarDate.init) else { continue }
                let current = i == versions.count - 1
                let w = max(3, x(l.adding(days: 1)) - x(e))
                let label = "\(current ? "target" : "earlier target") (\(t.type.rawValue) \(t.date)): due \(e) … \(l)"
                svg += linked(t, label: label, "<rect class=\"band\(current ? "" : " old")\" x=\"\(fmt(x(e)))\" y=\"\(fmt(y - (current ? 8 : 11)))\" width=\"\(fmt(w))\" height=\"\(current ? 16 : 22)\" rx=\"3\"/>")
            }
            guard let t = targets.first(where: { $0.milestone == m }) else { continue }
            let dueX = x(t.dueLatest.adding(days: 1))
            if let latest = t.actualLatest {
                let start = t.actual ?? latest
                let w = max(4, x(latest.adding(days: 1)) - x(start))
                let fill = t.state == .undetermined ? " style=\"fill:url(#hatch-\(esc(f.subject)))\"" : ""
                let what = t.impliedBy.map { "implied by \($0.rawValue), by \(latest)" } ?? "actual \(actualLabel(Rules.Actual(earliest: t.actual, latest: latest, impliedBy: nil)))"
                svg += "<rect class=\"actual \(t.state.rawValue)\(t.impliedBy == nil ? "" : " implied")\" x=\"\(fmt(x(start)))\" y=\"\(fmt(y - 4))\" width=\"\(fmt(w))\" height=\"8\"\(fill)><title>\(esc("\(m): \(what) — \(t.state.rawValue)"))</title></rect>"
                if t.state == .missed {
                    svg += "<line class=\"slip\" x1=\"\(fmt(dueX))\" x2=\"\(fmt(x(start)))\" y1=\"\(fmt(y))\" y2=\"\(fmt(y))\"><title>slipped \(t.slipDays ?? 0) days past the due date</title></line>"
                }
            } else if t.state == .overdue {
                svg += "<rect class=\"overdue-span\" x=\"\(fmt(dueX))\" y=\"\(fmt(y - 3))\" width=\"\(fmt(max(2, x(pov.asOf) - dueX)))\" height=\"6\"><title>\(esc("\(m): overdue by \(t.slipDays ?? 0) days as of \(pov.asOf)"))</title></rect>"
            }
            svg += "<text class=\"state-label \(t.state.rawValue)\" x=\"\(fmt(left + width + 96))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(t.state.rawValue)</text>"
        }
        svg += "</svg>"
        let since = f.phaseDate.label(at: f.phasePrecision)
        var out = "<article class=\"facility\" id=\"f-\(esc(f.subject))\"><h3>\(esc(f.name ?? f.subject))</h3>"
        out += "<p><code>\(esc(f.subject))</code>" + (f.operatorName.map { " · \(esc($0))" } ?? "") + (f.kind.map { " · \(esc($0))" } ?? "")
        out += (f.program.map { " · program <code>\(esc($0))</code>" } ?? "") + " · <span class=\"phase \(f.phase.rawValue)\">\(f.phase.rawValue.replacingOccurrences(of: "_", with: " ")) since \(since)</span></p>"
        out += "<div class=\"chart\">\(svg)</div></article>\n"
        return out
    }

    /// A mark wrapped in a link to its event's first source URL, titled with every source.
    func linked(_ e: KnownEvent, label: String, _ shape: String) -> String {
        let sources = e.object["sources"]?.arrayValue?.compactMap(\.objectValue) ?? []
        let names = sources.map { s in
            [s["publisher"]?.stringValue, s["title"]?.stringValue, s["published"]?.stringValue].compactMap { $0 }.joined(separator: ", ")
        }
        let title = esc(([label] + (e.object["summary"]?.stringValue.map { [$0] } ?? []) + names.map { "Source: \($0)" }).joined(separator: "\n"))
        let titled = shape.hasSuffix("/>") ? String(shape.dropLast(2)) + "><title>\(title)</title></" + shape.dropFirst().prefix { $0 != " " } + ">" : shape
        guard let url = sources.lazy.compactMap({ $0["url"]?.stringValue }).first else { return titled }
        return "<a href=\"\(esc(url))\">\(titled)</a>"
    }

    func esc(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static let style = """
        :root{--ink:#1d232b;--muted:#5b6570;--line:#d5dae0;--met:#2e7d32;--missed:#c62828;--undet:#b7791f;--band:#3b6ea8}
        *{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--ink);max-width:1100px;margin:0 auto;padding:16px}
        h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid var(--line);padding-bottom:.2em;margin-top:1.6em}h3{margin:.8em 0 .2em}
        .view{font-size:1.1em;font-weight:600}.meta,footer{color:var(--muted);font-size:.9em}code{font-size:.9em}
        .scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
        td.state{font-weight:600}.met{color:var(--met)}.missed,.overdue{color:var(--missed)}.undetermined{color:var(--undet)}
        .facility{page-break-inside:avoid;break-inside:avoid;margin-bottom:1.2em}.chart svg{width:100%;height:auto;display:block}
        .tick{stroke:#aab3bd;stroke-width:1}.qtick{stroke:#e6e9ed;stroke-width:1}.year{font-size:12px;fill:var(--muted);text-anchor:middle}
        .row{font-size:12px;fill:var(--ink)}.mark-label{font-size:9.5px;fill:var(--muted);text-anchor:middle}.asof{stroke:#6a1b9a;stroke-width:1.5;stroke-dasharray:4 3}.asof-label{font-size:11px;fill:#6a1b9a;text-anchor:middle}
        .mark.lifecycle{fill:var(--band);stroke:#fff;stroke-width:1}.mark.note{fill:#607d8b}.mark.control{fill:#ef6c00}.mark.coarse{opacity:.75}
        .band{fill:var(--band);opacity:.28;stroke:var(--band);stroke-width:1}.band.old{opacity:.12;stroke-dasharray:3 2}
        .actual.met{fill:var(--met)}.actual.missed{fill:var(--missed)}.actual.implied{opacity:.55}.undetermined-bg{fill:#fbe7c2}.hatch{stroke:var(--undet);stroke-width:3}
        .actual.undetermined{stroke:var(--undet);stroke-width:1}.slip{stroke:var(--missed);stroke-width:2;stroke-dasharray:3 2}.overdue-span{fill:var(--missed);opacity:.7}
        .state-label{font-size:12px;font-weight:600}.state-label.met{fill:var(--met)}.state-label.missed,.state-label.overdue{fill:var(--missed)}.state-label.undetermined{fill:var(--undet)}.state-label.pending{fill:var(--muted)}
        .phase{font-weight:600}.phase.cancelled{color:var(--missed)}.phase.paused{color:var(--undet)}a{color:inherit}
        .chart{overflow-x:auto}.meta{overflow-wrap:anywhere}
        @media (max-width:600px){body{font-size:14px;padding:8px}th,td{padding:3px 5px}.chart svg{min-width:760px}}
        @media print{body{max-width:none;font-size:11pt}a{text-decoration:none}.scroll{overflow:visible}h2{page-break-after:avoid}}
        """
}
