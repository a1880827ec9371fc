import ArgumentParser
import Foundation
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "record",
            abstract: "Append events: a JSON Lines batch (--file), or one event given by options.",
            discussion: """
                Every event is validated (docs/events.md) before anything is written; if one is
                invalid, nothing is written and every problem is listed as FILE:LINE: FIELD:
                REASON (exit 65). An event whose id is already recorded with the same content
                is skipped (idempotent retry); with other content it is rejected. Events
                without an id get ev-<first 20 hex digits of the SHA-256 of their canonical
                JSON>, so retrying an id-less batch is a no-op too.

                The read models (X.sqlite) serve as the index of ids, subjects and references
                when they exist, so recording into a large ledger does not rescan it; without
                them, record verifies the ledger in one pass instead.

                Examples:
                  milestones record --file events.jsonl
                  cat events.jsonl | milestones record --file -
                  milestones record --type facility.announced --subject foxconn-houston \\
                      --date 2025-04-14 --name "Foxconn supercomputer plant, Houston" \\
                      --operator Foxconn --kind assembly --city Houston --region TX \\
                      --country US --program nvidia-us-ai-infrastructure \\
                      --source "NVIDIA,https://nvidianews.nvidia.com/"
                  milestones record --type target.set --subject foxconn-houston \\
                      --date 2025-04-14 --milestone production.volume \\
                      --due-earliest 2026-04-14 --due-latest 2026-07-14 --source NVIDIA
                  milestones record --type investment.committed --subject wistron-texas \\
                      --date 2025-08 --amount '$761M' \\
                      --source "The Real Deal,https://therealdeal.com/x" \\
                      --source-title "Wistron to spend \\$761M" --source-published 2025-08-21
                  milestones record --type production.started --subject foxconn-houston \\
                      --date 2026-Q1 --source Reuters

                The event vocabulary, every type with its fields: milestones types [TYPE].
                  milestones record --type event.corrected --subject wistron-texas \\
                      --date 2025-08-21 --corrects wistron-texas-announced \\
                      --changes '{"location":{"city":"Fort Worth","country":"US"}}' \\
                      --reason "the plant is in Fort Worth" \\
                      --source "Dallas Business Journal"
                """
        )

        @OptionGroup var read: ReadSide
        @OptionGroup var waitOption: WaitOption

        @Option(name: .shortAndLong, help: ArgumentHelp("A JSON Lines file of events; - reads stdin.", valueName: "file"))
        var file: String?
        @Option(help: "Output: text or json.") var format: OutputFormat = .text
        @Flag(name: .shortAndLong, help: "Print nothing on success.") var quiet = false

        // One event by options.
        @Option(help: "Event type, e.g. construction.started (`milestones types` lists them).", completion: typeCompletion) var type: String?
        @Option(help: "The program or facility slug.", completion: subjectCompletion) var subject: String?
        @Option(help: ArgumentHelp("When it happened: YYYY-MM-DD, or as much as is known — 2025-09, 2025-Q3, 2025 — which sets --precision (a correction or retraction: default today, UTC).", valueName: "date"))
        var date: String?
        @Option(help: "day (default), month, quarter or year.") var precision: String?
        @Option(help: ArgumentHelp("A source: PUBLISHER or PUBLISHER,URL (repeatable).", valueName: "publisher[,url]"))
        var source: [String] = []
        @Option(name: .customLong("source-title"), help: ArgumentHelp("The title of a source, in the order of --source (repeatable).", valueName: "title"))
        var sourceTitle: [String] = []
        @Option(name: .customLong("source-published"), help: ArgumentHelp("When a source was published, in the order of --source (repeatable): it sets the event's publication date.", valueName: "YYYY-MM-DD"))
        var sourcePublished: [String] = []
        @Option(help: "The event's id (default: derived from its content).") var id: String?
        @Option(help: "Free text, at most 2,000 characters.") var summary: String?
        @Option(help: "Program or facility name.") var name: String?
        @Option(help: "Program sponsor (org).") var sponsor: String?
        @Option(name: .customLong("operator"), help: "Facility operator (org).") var operatorName: String?
        @Option(help: "Facility kind: fab, packaging, assembly, datacenter, other.") var kind: String?
        @Option(help: "Location city.") var city: String?
        @Option(help: "Location region.") var region: String?
        @Option(help: "Location country (ISO 3166-1 alpha-2).") var country: String?
        @Option(help: "The program a facility belongs to (slug).") var program: String?
        @Option(help: "A partner org (repeatable).") var partner: [String] = []
        @Option(name: .customLong("area-sqft"), help: "Area in square feet.") var areaSqft: Int64?
        @Option(help: ArgumentHelp("An amount: 500000000000, 500B, 1.2M, $761M, €2.5B (K, M, B, T; a symbol sets the currency).", valueName: "amount"))
        var amount: String?
        @Option(help: "Amount currency (ISO 4217; default USD, or the amount's symbol).") var currency: String?
        @Option(help: "Amount qualifier: exact, about, up_to, at_least.") var qualifier: String?
        @Option(help: "Program horizon date.") var horizon: String?
        @Option(help: "Product.") var product: String?
        @Option(help: "Target milestone, or a production milestone's text.") var milestone: String?
        @Option(help: "Quantity (production.milestone).") var quantity: Int64?
        @Option(help: "Reason (pause, cancel, revision, correction, retraction).") var reason: String?
        @Option(name: .customLong("due-earliest"), help: ArgumentHelp("Target due: earliest date (2026, 2026-Q2, 2026-04: their first day).", valueName: "date"))
        var dueEarliest: String?
        @Option(name: .customLong("due-latest"), help: ArgumentHelp("Target due: latest date (2026, 2026-Q2, 2026-04: their last day).", valueName: "date"))
        var dueLatest: String?
        @Option(help: "The id of the event a correction corrects.") var corrects: String?
        @Option(help: "The id of the event a retraction retracts.") var retracts: String?
        @Option(help: "A correction's changes, as a JSON object.") var changes: String?

        var givesEventOptions: Bool {
            type != nil || subject != nil || date != nil || !source.isEmpty
        }

        func validate() throws {
            if file != nil && givesEventOptions {
                throw ValidationError("give either --file or an event by options (--type, --subject, …), not both")
            }
            if file == nil && !givesEventOptions {
                throw ValidationError("nothing to record: give --file FILE (- for stdin) or an event with --type, --subject, --date and --source")
            }
            if sourceTitle.count > source.count || sourcePublished.count > source.count {
                throw ValidationError("--source-title and --source-published go with a --source each, in the same order")
            }
        }

        /// The event the options describe; the validator reports what is missing or wrong.
        func eventFromOptions() throws -> JSONValue {
            // A correction or retraction happens when it is made: today (UTC) unless --date says otherwise.
            let isAmendment = type == EventType.eventCorrected.rawValue || type == EventType.eventRetracted.rawValue
            var cells: [(path: String, value: String)] = [
                ("type", type), ("subject", subject), ("date", date ?? (isAmendment ? LedgerClock.now().date.description : nil)),
                ("precision", precision), ("id", id), ("summary", summary), ("name", name), ("sponsor", sponsor), ("operator", operatorName),
                ("kind", kind), ("program", program), ("horizon", horizon), ("product", product), ("milestone", milestone), ("reason", reason),
                ("corrects", corrects), ("retracts", retracts), ("location.city", city), ("location.region", region), ("location.country", country),
                ("area_sqft", areaSqft.map(String.init)), ("quantity", quantity.map(String.init)), ("amount", amount),
                ("amount.currency", currency), ("amount.qualifier", qualifier), ("due.earliest", dueEarliest), ("due.latest", dueLatest),
            ].compactMap { path, value in value.map { (path, $0) } }
            cells += partner.map { ("partner", $0) }
            let sources: [JSONObject] = source.enumerated().map { k, s in
                var src = JSONObject()
                if let r = s.range(of: ",https://") ?? s.range(of: ",http://") {
                    src["publisher"] = .string(String(s[..<r.lowerBound]))
                    src["url"] = .string(String(s[s.index(after: r.lowerBound)...]))
                } else {
                    src["publisher"] = .string(s)
                }
                if k < sourceTitle.count { src["title"] = .string(sourceTitle[k]) }
                if k < sourcePublished.count { src["published"] = .string(sourcePublished[k]) }
                return src
            }
            var o: JSONObject
            do {
                o = try FlatEvent.build(cells, sources: sources)
            } catch {
                throw InputError(problems: ["record: \(error.path): \(error.message)"])
            }
            if let changes {
                do {
                    o["changes"] = try JSONReader.parse(changes)
                } catch {
                    throw InputError(problems: ["--changes: not JSON: \(error)"])
                }
            }
            return .object(o)
        }

        func run() throws {
            try reportingErrors {
                if read.readOnly { throw UsageProblem(message: "record --read-only: recording writes the ledger; drop --read-only") }
                let models = try read.modelsLocation
                var postgres: PostgresLocation?
                if case .postgres(let pg) = models { postgres = pg }
                let useModels = read.db != nil || postgres != nil || read.rebuild || FileManager.default.fileExists(atPath: read.dbPath)
                let recording = try Recording(ledger: read.location.path, readModels: useModels ? read.dbPath : nil, postgres: postgres,
                                              rebuild: read.rebuild, wait: waitOption.wait)
                let batch = recording.batch
                // Only JSON lists every event: a large batch keeps no more than it shows.
                batch.outcomeLimit = quiet ? 0 : format == .json ? .max : Record.shownOutcomes
                if let file, file.lowercased().hasSuffix(".csv") {
                    try CSVInput.add(file, to: batch)
                } else if let file {
                    // A long batch shows how far the checking has got, on a terminal only.
                    let progress = isTerminal(2) ? ProgressLine(label: "checking \(file)") : nil
                    batch.progress = progress.map { p in { p.update($0, of: $1) } }
                    try batch.add(from: try InputFile.open(file))
                    progress?.done()
                } else {
                    batch.add(try eventFromOptions())
                }
                let outcomes = try recording.commit()
                report(outcomes, appended: batch.appendedCount, all: batch.appendedCount + batch.alreadyRecordedCount, source: batch.source)
            }
        }

        /// The events the text report lists (the rest are counted).
        static let shownOutcomes = 20

        /// `outcomes`: the first ones (all of them for JSON); `appended` and `all`: the counts.
        func report(_ outcomes: [RecordOutcome], appended: Int, all: Int, source: String) {
            func place(_ o: RecordOutcome) -> String { o.line.map { "\(source):\($0)" } ?? source }
            if quiet { return }
            switch format {
            case .json:
                let events: [JSONValue] = outcomes.map { o in
                    ["place": .string(place(o)), "id": .string(o.id), "seq": o.seq.map { .int(Int64($0)) } ?? .null,
                     "status": .string(o.status.rawValue)]
                }
                print(jsonLine(["appended": .int(Int64(appended)), "already_recorded": .int(Int64(all - appended)),
                                "events": .array(events)]))
            case .text:
                for o in outcomes.prefix(Record.shownOutcomes) {
                    if let seq = o.seq {
                        print("appended seq \(seq) id \(o.id)")
                    } else {
                        print("already recorded: id \(o.id) (\(place(o))), skipped")
                    }
                }
                if all > Record.shownOutcomes { print("… \(all - Record.shownOutcomes) more") }
                print("\(appended) appended, \(all - appended) already recorded")
            }
        }
    }
}
