import Foundation
import PostgresNIO

/// One connection to PostgreSQL, used from synchronous code: the plumbing
/// between the commands (synchronous, as swift-argument-parser runs them)
/// and PostgresNIO (futures and async). Queries wait on NIO's futures; COPY,
/// which the driver offers as async only, runs in a task that this thread
/// feeds and waits for (``copy(into:columns:_:)``). Nothing else in the
/// project touches the driver's concurrency.
///
/// Every error that leaves it is a ``ReadModelsServiceError``: one line,
/// the server named without its password, the remedy, the exit code.
final class PostgresSession {
    let location: PostgresLocation
    let connection: PostgresConnection
    let logger: Logger

    static let quietLogger: Logger = {
        var l = Logger(label: "milestones.postgres")
        l.logLevel = .critical
        return l
    }()

    /// `settings`: run-time parameters set for the whole session in the
    /// connection's startup message (no statement, no round trip).
    init(_ location: PostgresLocation, settings: [(String, String)] = []) throws {
        self.location = location
        logger = PostgresSession.quietLogger
        var config = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                      password: location.password, database: location.database,
                                                      tls: try PostgresSession.tls(location))
        config.options.connectTimeout = .seconds(Int64(location.connectTimeout))
        config.options.additionalStartupParameters = settings
        do {
            connection = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: config,
                                                        id: 1, logger: logger).wait()
        } catch {
            throw PostgresSession.describe(error, location: location, connecting: true)
        }
    }

    deinit {
        try? connection.close().wait()
    }

    /// libpq's sslmode as NIO's TLS settings (docs/read-models.md says what each does).
    static func tls(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        var config = TLSConfiguration.makeClientConfiguration()
        switch location.sslMode {
        case .disable:
            return .disable
        case .allow, .prefer, .require:
            config.certificateVerification = .none
        case .verifyCA:
            config.certificateVerification = .noHostnameVerification
        case .verifyFull:
            config.certificateVerification = .fullVerification
        }
        if let root = location.sslRootCert, location.sslMode == .verifyCA || location.sslMode == .verifyFull {
            config.trustRoots = .file(root)
        }
        do {
            let context = try NIOSSLContext(configuration: config)
            return location.sslMode == .require || location.sslMode == .verifyCA || location.sslMode == .verifyFull
                ? .require(context) : .prefer(context)
        } catch {
            throw ReadModelsServiceError(message: "\(location): TLS set-up failed (\(error)); check sslrootcert", exitCode: 64)
        }
    }

    /// Runs one statement and returns its rows, or the SQLSTATE it failed
    /// with if that is one of `states` (any other failure is thrown).
    /// Outside a transaction only: a failed statement aborts the transaction it is in.
    func query(_ sql: String, failingOnlyWith states: Set<String>) throws -> (rows: [PostgresRow], failed: String?) {
        do {
            return (try query(sql, wrappingErrors: false), nil)
        } catch let e as PSQLError where states.contains(e.serverInfo?[.sqlState] ?? "") {
            return ([], e.serverInfo?[.sqlState])
        } catch {
            throw PostgresSession.describe(error, location: location, connecting: false)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ sql: String, _ binds: PostgresBindings = PostgresBindings()) throws -> [PostgresRow] {
        try query(sql, binds, wrappingErrors: true)
    }

    private func query(_ sql: String, _ binds: PostgresBindings = PostgresBindings(), wrappingErrors: Bool) throws -> [PostgresRow] {
        do {
            // A connection the server ended while idle (a restart, an administrator) leaves a query
            // sent afterwards waiting for ever: the connection's close fails it instead.
            let promise = connection.eventLoop.makePromise(of: [PostgresRow].self)
            connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).map(\.rows).cascade(to: promise)
            connection.closeFuture.whenComplete { _ in promise.fail(ConnectionLost()) }
            return try promise.futureResult.wait()
        } catch {
            throw wrappingErrors ? PostgresSession.describe(error, location: location, connecting: false) : error
        }
    }

    /// Runs one statement and hands its rows to `body`, on this thread, as
    /// they arrive: the rows are read while earlier ones are worked on, and
    /// each row's memory is given back as soon as `body` is done with it, so
    /// a large result is neither held whole nor copied into new pages. If
    /// `body` throws, its error comes out at once; the driver still reads
    /// the rest of the rows and drops them (it asks the server for no
    /// cancellation), so this session's next statement waits for them.
    /// While `body` runs, the connection's event loop may be waiting for this
    /// thread to take more rows, and event loops are shared between
    /// connections: `body` must not wait for any PostgreSQL connection.
    func forEachRow(_ sql: String, _ binds: PostgresBindings = PostgresBindings(), _ body: (PostgresRow) throws -> Void) throws {
        let queue = RowQueue()
        connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) { row in try queue.push(row) }
            .whenComplete { queue.finish($0.map { _ in }) }
        connection.closeFuture.whenComplete { _ in queue.finish(.failure(ConnectionLost())) }
        var batch: [PostgresRow] = []
        var failure: Error?
        while true {
            if let end = queue.next(&batch) {
                // After a failure of `body`, the query's end is the cancellation it asked for.
                if let failure { throw failure }
                if case .failure(let error) = end { throw PostgresSession.describe(error, location: location, connecting: false) }
                return
            }
            for row in batch where failure == nil {
                do { try body(row) } catch {
                    failure = error
                    queue.stop()
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(readOnly: Bool = false, _ body: () throws -> T) throws -> T {
        try query(readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    /// COPY … FROM STDIN (text format) into `table`: `produce` hands over
    /// the rows' text, a chunk at a time, as this thread makes them.
    func copy(into table: String, columns: [String], _ produce: ((inout ByteBuffer) throws -> Void) throws -> Void) throws {
        let pipe = CopyPipe()
        let connection = self.connection, logger = self.logger
        connection.closeFuture.whenComplete { _ in pipe.finished(ConnectionLost()) }
        Task.detached {
            do {
                try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
                    pipe.opened(writer)
                    try await pipe.waitUntilProduced()
                }
                pipe.finished(nil)
            } catch {
                pipe.finished(error)
            }
        }
        do {
            guard let writer = pipe.waitForWriter() else { throw pipe.waitForOutcome() ?? CancellationError() }
            try produce { chunk in
                let data = chunk
                chunk.clear()
                try PostgresSession.blocking(until: connection.closeFuture) { try await writer.write(data) }
            }
            pipe.produced(nil)
        } catch {
            pipe.produced(error)
            _ = pipe.waitForOutcome()
            if error is ReadModelsServiceError { throw error }
            throw PostgresSession.describe(error, location: location, connecting: false)
        }
        if let error = pipe.waitForOutcome() {
            throw PostgresSession.describe(error, location: location, connecting: false)
        }
    }

    /// Runs async work and waits for it on this (non-async) thread, or until `closed` completes (the connection's end).
    static func blocking<T: Sendable>(until closed: EventLoopFuture<Void>, _ work: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        closed.whenComplete { _ in box.set(.failure(ConnectionLost())) }
        Task.detached {
            box.set(await Result { try await work() })
        }
        return try box.wait().get()
    }

    /// A driver or server error as one line with its remedy.
    static func describe(_ error: Error, location: PostgresLocation, connecting: Bool) -> ReadModelsServiceError {
        if let e = error as? ReadModelsServiceError { return e }
        let server = "\(location)"
        if error is ConnectionLost {
            return ReadModelsServiceError(message: "\(server): the connection to the server was lost; nothing of this command was applied; run it again when the server is up", exitCode: 69)
        }
        if let e = error as? PSQLError {
            let state = e.serverInfo?[.sqlState] ?? ""
            let message = e.serverInfo?[.message] ?? ""
            switch state {
            case "28000" where message.contains("pg_hba.conf"):
                // Not the password: no rule of the server's pg_hba.conf admits this user, address, database or encryption.
                return ReadModelsServiceError(message: "\(server): the server refuses this connection (\(message)); check sslmode, or ask its administrator (pg_hba.conf)", exitCode: 77)
            case "28P01", "28000":
                return ReadModelsServiceError(message: "\(server): authentication failed for user \(location.user); check the password (in the URL, PGPASSWORD or ~/.pgpass)", exitCode: 77)
            case "3D000":
                return ReadModelsServiceError(message: "\(server): database \(location.database) does not exist; create it (createdb \(location.database)) or name another in --db", exitCode: 69)
            case "57P01", "57P02", "57P03":
                return ReadModelsServiceError(message: "\(server): the server shut down or restarted (\(message)); nothing of this command was applied; run it again when the server is up", exitCode: 69)
            case "42501":
                return ReadModelsServiceError(message: "\(server): permission denied (\(message)); grant the user rights on the database or the schema milestones", exitCode: 77)
            case "25006":
                return ReadModelsServiceError(message: "\(server): the server is read-only (a replica); use --read-only there", exitCode: 69)
            case "":
                break
            default:
                return ReadModelsServiceError(message: "\(server): \(message) (SQLSTATE \(state))", exitCode: 69)
            }
            // A certificate refused during the handshake comes as a connection error.
            if let u = e.underlying, u is NIOSSLError || u is BoringSSLError || u is NIOSSLExtraError {
                return ReadModelsServiceError(message: "\(server): TLS failed (\(u)); check sslmode and sslrootcert", exitCode: 69)
            }
            switch e.code {
            case .connectionError where connecting:
                return ReadModelsServiceError(message: "\(server): cannot connect (is the server running and accepting TCP connections there?)", exitCode: 69)
            case .serverClosedConnection, .connectionError, .uncleanShutdown:
                return ReadModelsServiceError(message: "\(server): the connection to the server was lost; nothing of this command was applied; run it again when the server is up", exitCode: 69)
            case .sslUnsupported:
                return ReadModelsServiceError(message: "\(server): the server does not offer TLS but sslmode=\(location.sslMode.rawValue) requires it; use sslmode=prefer or disable, or enable ssl on the server", exitCode: 69)
            case .failedToAddSSLHandler:
                return ReadModelsServiceError(message: "\(server): TLS failed (\(e.underlying.map { "\($0)" } ?? "handshake")); check sslmode and sslrootcert", exitCode: 69)
            case .authMechanismRequiresPassword:
                return ReadModelsServiceError(message: "\(server): the server asks for a password for user \(location.user); give it in the URL, PGPASSWORD or ~/.pgpass", exitCode: 77)
            default:
                let detail = e.underlying.map { "\($0)" } ?? "\(e.code)"
                return ReadModelsServiceError(message: "\(server): \(detail) (is the server running?)", exitCode: 69)
            }
        }
        if connecting {
            return ReadModelsServiceError(message: "\(server): cannot connect (\(error)); is the server running and accepting TCP connections there?", exitCode: 69)
        }
        return ReadModelsServiceError(message: "\(server): \(error)", exitCode: 69)
    }
}

/// The connection closed under a query.
struct ConnectionLost: Error {}

/// A result handed from a task to a waiting thread.
final class ResultBox<T>: @unchecked Sendable {
    private var result: Result<T, Error>?
    private let lock = NSCondition()
    /// The first result counts.
    func set(_ r: Result<T, Error>) {
        lock.lock()
        if result == nil { result = r }
        lock.broadcast()
        lock.unlock()
    }
    func wait() -> Result<T, Error> {
        lock.lock()
        defer { lock.unlock() }
        while result == nil { lock.wait() }
        return result!
    }
}

extension Result where Failure == Error {
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// The rows of a query, handed from the connection's event loop to the
/// thread that reads them (``PostgresSession/forEachRow(_:_:_:)``).
final class RowQueue: @unchecked Sendable {
    private let lock = NSCondition()
    private var rows: [PostgresRow] = []
    private var end: Result<Void, Error>?
    private var stopped = false
    /// Rows waiting at most; the event loop waits for the reader beyond it,
    /// so the server waits too, and a row's memory is used again soon after
    /// it is freed, while it is still in the cache, instead of new pages.
    /// (Rows of summaries are ~20 KB; bench/results/postgres-*.md has the
    /// figures behind the choice.)
    static let depth = 16

    /// On the event loop: one more row, after waiting while ``depth`` rows
    /// are waiting. Throws once the reader has stopped, which ends the query.
    func push(_ row: PostgresRow) throws {
        lock.lock()
        defer { lock.unlock() }
        while rows.count >= RowQueue.depth && !stopped { lock.wait() }
        if stopped { throw CancellationError() }
        rows.append(row)
        if rows.count == 1 { lock.broadcast() }
    }

    /// The query ended (the first end counts).
    func finish(_ result: Result<Void, Error>) {
        lock.lock()
        if end == nil { end = result }
        lock.broadcast()
        lock.unlock()
    }

    /// The reader wants no more rows.
    func stop() {
        lock.lock()
        stopped = true
        lock.broadcast()
        lock.unlock()
    }

    /// Waits for rows or the end. Rows come first: they are swapped into
    /// `batch` (empty on entry) and the result is nil; once every row has
    /// been taken, the end.
    func next(_ batch: inout [PostgresRow]) -> Result<Void, Error>? {
        lock.lock()
        defer { lock.unlock() }
        while rows.isEmpty && end == nil { lock.wait() }
        if rows.isEmpty { return end }
        swap(&rows, &batch)
        lock.broadcast()
        return nil
    }
}

/// The hand-over between COPY's task (which owns the writer while the copy
/// lasts) and the thread that makes the rows.
final class CopyPipe: @unchecked Sendable {
    private let lock = NSCondition()
    private var writer: PostgresCopyFromWriter?
    private var writerGiven = false
    private var producedError: Error??
    private var producedWaiter: CheckedContinuation<Void, Error>?
    private var outcome: Error??

    func opened(_ w: PostgresCopyFromWriter) {
        lock.lock()
        writer = w
        writerGiven = true
        lock.broadcast()
        lock.unlock()
    }

    /// The writer, or nil when the copy ended before it began.
    func waitForWriter() -> PostgresCopyFromWriter? {
        lock.lock()
        defer { lock.unlock() }
        while !writerGiven && outcome == nil { lock.wait() }
        return writer
    }

    func waitUntilProduced() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            lock.lock()
            if let e = producedError {
                lock.unlock()
                if let e { c.resume(throwing: e) } else { c.resume() }
                return
            }
            producedWaiter = c
            lock.unlock()
        }
    }

    func produced(_ error: Error?) {
        lock.lock()
        producedError = .some(error)
        let waiter = producedWaiter
        producedWaiter = nil
        lock.unlock()
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
    }

    /// The first outcome counts.
    func finished(_ error: Error?) {
        lock.lock()
        if outcome == nil { outcome = .some(error) }
        lock.broadcast()
        lock.unlock()
    }

    func waitForOutcome() -> Error? {
        lock.lock()
        defer { lock.unlock() }
        while outcome == nil { lock.wait() }
        return outcome!
    }
}
