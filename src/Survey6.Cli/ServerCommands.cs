using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Survey6.Aggregator;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Hosting;
using Survey6.Server.Options;
using Survey6.Server.Pki;
using Survey6.Server.Storage;
using OperatorCommands = Survey6.Server.Control.ProbeCommands;

namespace Survey6.Cli;

/// <summary>
/// <c>survey6 server ...</c>: run the C&amp;C server and manage its join tokens and probes. The
/// token and probe commands work on the data directory's state.db directly, with or without a
/// running server; a running server picks up commands and revocations from state.db within
/// <c>Server:Control:ExternalChangePollInterval</c> (1 s).
/// </summary>
public static partial class ServerCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "Server data directory (default /var/lib/survey6/server)", Recursive = true };
        var config = new Option<string>("--config") { Description = "JSON configuration file (section Server)", Recursive = true };
        var server = new Command("server", "Command-and-control server: enrol probes, receive their captures") { dataDir, config };
        server.Subcommands.Add(CreateRun(dataDir, config));
        server.Subcommands.Add(CreateToken(dataDir, config));
        server.Subcommands.Add(CreateProbes(dataDir, config));
        server.Subcommands.Add(CreateApiToken(dataDir, config));
        server.Subcommands.Add(CreateUploads(dataDir, config));
        server.Subcommands.Add(CreateProbe(dataDir, config));
        server.Subcommands.Add(CreateAdmin(dataDir, config));
        server.Subcommands.Add(CreateRepo(dataDir, config));
        return server;
    }

    private static Command CreateRun(Option<string> dataDir, Option<string> config)
    {
        var grpcListen = new Option<string>("--grpc-listen") { Description = "gRPC endpoint for probes, ADDR:PORT (port 0: any free port)" };
        var httpListen = new Option<string>("--http-listen") { Description = "HTTP endpoint for operators, ADDR:PORT (port 0: any free port)" };
        var noAggregator = new Option<bool>("--no-aggregator")
        {
            Description = "Do not run the aggregator inside the server; separate `survey6 aggregate run` workers consume the ingest queue",
        };
        var command = new Command("run", "Run the server (and, unless --no-aggregator, the aggregator) until interrupted; prints the bound addresses")
        {
            grpcListen, httpListen, noAggregator,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var overrides = Overrides(parse, dataDir);
            if (parse.GetValue(grpcListen) is { } grpc)
                overrides["Server:GrpcListen"] = grpc;
            if (parse.GetValue(httpListen) is { } http)
                overrides["Server:HttpListen"] = http;
            {
                var options = ServerConfiguration.LoadServerOptions(parse.GetValue(config), overrides);
                CliPaths.RequireDirectory(options.DataDirectory, "the data directory", mayCreate: true);
                DirectoryOwner.Become(options.DataDirectory, parse);
                CheckListen(options.GrpcListen, "--grpc-listen (Server:GrpcListen)");
                CheckListen(options.HttpListen, "--http-listen (Server:HttpListen)");
                // One server per data directory, refused before recovery or anything else touches it.
                using var owner = new Survey6.Data.DataLayout(options.DataDirectory).AcquireServerLock();
                var builder = ServerApplication.CreateBuilder(parse.GetValue(config), overrides);
                OperatorConsoleFormatter.Use(builder.Logging);
                // The data page reads the ledger and the lake with the aggregator's code, also when the aggregator
                // runs in other processes (workers share DATA's lake and ledger).
                builder.Services.AddSurvey6AggregatorViews();
                if (!parse.GetValue(noAggregator))
                    AggregatorHosting.AddToServer(builder, options.DataDirectory);
                await using var app = ServerApplication.Build(builder);
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
                var endpoints = ServerEndpoints.From(app.Services);
                output.WriteLine($"grpc: {endpoints.GrpcUrl}");
                output.WriteLine($"http: {(endpoints.HttpUrl?.ToString() ?? "none")}");
                output.WriteLine($"join-url: {endpoints.AdvertisedUrl}");
                output.WriteLine($"ca-hash: {app.Services.GetRequiredService<ServerPki>().Authority.Pin}");
                output.Flush();
                await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
                return 0;
            }
        });
        return command;
    }

    /// <summary>
    /// Binds <paramref name="text"/> for a moment, so that an address this host lacks, a port in use or a privileged
    /// port is reported with the option that named it, before the server touches its data directory.
    /// </summary>
    private static void CheckListen(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text))
            return; // none
        if (!ListenAddress.TryParse(text, out var listen))
            throw new CliException(ExitCodes.Usage, $"{option} '{text}' is not ADDR:PORT, [IPV6]:PORT, localhost:PORT or *:PORT");
        var address = listen.Address ?? System.Net.IPAddress.IPv6Any;
        try
        {
            using var socket = new System.Net.Sockets.Socket(address.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            if (listen.IsAny)
                socket.DualMode = true;
            socket.Bind(new System.Net.IPEndPoint(address, listen.Port));
        }
        catch (System.Net.Sockets.SocketException e)
        {
            var (status, why) = e.SocketErrorCode switch
            {
                System.Net.Sockets.SocketError.AddressAlreadyInUse => (ExitCodes.Conflict, "the port is in use by another program; stop it or choose another port"),
                System.Net.Sockets.SocketError.AddressNotAvailable => (ExitCodes.Unavailable, "this host has no such address; use one of its own addresses, or *:PORT"),
                System.Net.Sockets.SocketError.AccessDenied => (ExitCodes.Permission, "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023"),
                _ => (ExitCodes.Unavailable, e.Message),
            };
            throw new CliException(status, $"cannot listen on {listen} ({option}): {why}");
        }
    }

    private static Command CreateToken(Option<string> dataDir, Option<string> config)
    {
        var token = new Command("token", "Join tokens: create, list, revoke");

        var ttl = new Option<string>("--ttl") { Description = "Lifetime: 24h, 30m, 7d, ...; 0 for no expiry", DefaultValueFactory = _ => "24h" };
        var uses = new Option<int>("--uses") { Description = "How many probes may join with it", DefaultValueFactory = _ => 1 };
        var labels = new Option<string[]>("--label") { Description = "key=value label given to every probe that joins with it (repeatable)" };
        var description = new Option<string>("--description") { Description = "Free text, e.g. where the probes go", DefaultValueFactory = _ => "" };
        var create = new Command("create", "Create a join token and print the probe's join command") { ttl, uses, labels, description };
        create.SetAction(parse =>
        {
            if (!DurationText.TryParse(parse.GetValue(ttl)!, out var lifetime))
                return Fail(parse, "token create", $"--ttl '{parse.GetValue(ttl)}' is not a duration like 24h, 30m or 7d (0: no expiry)");
            if (parse.GetValue(uses) < 1)
                return Fail(parse, "token create", "--uses must be at least 1");
            if (!Contracts.ProbeLabels.TryParse(parse.GetValue(labels), out var labelMap, out var labelError))
                return Fail(parse, "token create", labelError!);

            return WithState(parse, "token create", () =>
            {
                var options = LoadOptions(parse, dataDir, config);
                using var pki = new ServerPki(Microsoft.Extensions.Options.Options.Create(options), TimeProvider.System);
                var database = StateDatabase.OpenAndMigrate(pki.Directory.StateDatabase);
                var created = new TokenStore(database, TimeProvider.System).Create(lifetime, parse.GetValue(uses), labelMap, parse.GetValue(description)!);
                var url = new SettingsStore(database).Get(SettingsStore.ServerUrl)
                    ?? ServerEndpoints.Advertise(options, ListenAddress.TryParse(options.GrpcListen, out var listen) ? listen.Port : 7443).ToString().TrimEnd('/');

                var output = parse.InvocationConfiguration.Output;
                output.WriteLine($"token: {created.Token}");
                output.WriteLine($"expires: {(created.Info.ExpiresAt is { } e ? e.ToString("u") : "never")}");
                output.WriteLine($"uses: {created.Info.MaxUses}");
                output.WriteLine("join a probe with:");
                output.WriteLine(JoinCommand.Format(url, created.Token, pki.Authority.Pin));
                return 0;
            });
        });

        var json = new Option<bool>("--json") { Description = "JSON instead of a table" };
        var list = new Command("list", "List join tokens (never their secrets)") { json };
        list.SetAction(parse => WithState(parse, "token list", () =>
        {
            var (database, time) = (OpenDatabase(parse, dataDir, config), TimeProvider.System);
            var tokens = new TokenStore(database, time).List();
            var now = time.GetUtcNow();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                var array = new JsonArray(tokens.Select(t => (JsonNode)new JsonObject
                {
                    ["id"] = t.Id,
                    ["status"] = t.Status(now),
                    ["used"] = t.Used,
                    ["max_uses"] = t.MaxUses,
                    ["created_at"] = t.CreatedAt.ToString("o"),
                    ["expires_at"] = t.ExpiresAt?.ToString("o"),
                    ["revoked_at"] = t.RevokedAt?.ToString("o"),
                    ["labels"] = new JsonObject(t.Labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
                    ["description"] = t.Description,
                }).ToArray());
                output.WriteLine(array.ToJsonString(Indented));
                return 0;
            }

            WriteTable(output, ["ID", "STATUS", "USES", "EXPIRES", "LABELS", "DESCRIPTION"], tokens.Select(t => new[]
            {
                t.Id, t.Status(now), $"{t.Used}/{t.MaxUses}", t.ExpiresAt?.ToString("u") ?? "never", FormatLabels(t.Labels), t.Description,
            }));
            return 0;
        }));

        var id = new Argument<string>("ID") { Description = "Token id (the part before the dot)" };
        var revoke = new Command("revoke", "Revoke a join token; probes that already joined keep their certificates") { id };
        revoke.SetAction(parse => WithState(parse, "token revoke", () =>
        {
            var tokenId = parse.GetValue(id)!;
            var dot = tokenId.IndexOf('.', StringComparison.Ordinal);
            if (dot > 0)
                tokenId = tokenId[..dot]; // accept the whole token too
            if (!new TokenStore(OpenDatabase(parse, dataDir, config), TimeProvider.System).Revoke(tokenId))
                return Fail(parse, "token revoke", $"no token {tokenId}", ExitCodes.NotFound);
            parse.InvocationConfiguration.Output.WriteLine($"revoked token {tokenId}");
            return 0;
        }));

        token.Subcommands.Add(create);
        token.Subcommands.Add(list);
        token.Subcommands.Add(revoke);
        return token;
    }

    private static Command CreateProbes(Option<string> dataDir, Option<string> config)
    {
        var json = new Option<bool>("--json") { Description = "JSON (with host facts and the last heartbeat) instead of a table" };
        var command = new Command("probes", "List probes: state and why, last heartbeat, clock skew, rates") { json };
        command.SetAction((parse, cancellationToken) => WithStateAsync(parse, "probes", async () =>
        {
            var database = OpenDatabase(parse, dataDir, config);
            var probes = new ProbeStore(database, TimeProvider.System).List();
            var health = (await HealthQuery(parse, dataDir, config, database).ListAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(h => h.ProbeId, StringComparer.Ordinal);
            var output = parse.InvocationConfiguration.Output;
            // The server's own state first: a full disk or a failing store makes every probe's uploads fail, however healthy the probe.
            var disk = Survey6.Server.Metrics.DataDiskState.Read(LoadOptions(parse, dataDir, config).DataDirectory,
                ServerConfiguration.LoadDiskFloor(parse.GetValue(config), Overrides(parse, dataDir)));
            var server = new Survey6.Server.Metrics.ServerHealthState(disk, new SettingsStore(database).Get(SettingsStore.UploadFailures));
            foreach (var degraded in server.Reasons)
                parse.InvocationConfiguration.Error.WriteLine($"server: degraded: {degraded}");
            if (parse.GetValue(json))
            {
                var array = new JsonArray(probes.Select(p => (JsonNode)ProbeJson(p, health[p.Id])).ToArray());
                output.WriteLine(array.ToJsonString(Indented));
                return 0;
            }

            WriteTable(output, ["ID", "STATE", "HOSTNAME", "HEARTBEAT", "SKEW", "PKTS/S", "DROPPED", "UPLOAD/S", "REASONS"], probes.Select(p =>
            {
                var h = health[p.Id];
                return new[]
                {
                    p.Id, h.State, p.Hostname,
                    h.LastHeartbeatAge is { } age ? ProbeHealthFormat.Duration(age) + " ago" : "never",
                    h.ClockSkew is { } skew ? (skew < TimeSpan.Zero ? "-" : "+") + ProbeHealthFormat.Duration(skew) : "-",
                    h.LastHeartbeatAt is null ? "-" : h.Rates.PacketsPerSecond.ToString("0.#", CultureInfo.InvariantCulture),
                    h.LastHeartbeatAt is null ? "-" : ProbeHealthFormat.Percent(h.Rates.DropRatio),
                    h.LastHeartbeatAt is null ? "-" : ProbeHealthFormat.Bytes(h.Rates.UploadBytesPerSecond),
                    h.Reasons.Count == 0 ? "-" : string.Join("; ", h.Reasons.Select(r => r.Code == HealthReasonCodes.NeverReported ? r.Detail : r.ToString())),
                };
            }));
            return 0;
        }));
        return command;
    }

    private static Command CreateApiToken(Option<string> dataDir, Option<string> config)
    {
        var group = new Command("api-token", "Bearer tokens for the operator API (/api/v1): create, list, revoke");

        var name = new Option<string>("--name") { Description = "Who or what uses it, e.g. grafana or alice", DefaultValueFactory = _ => "" };
        var ttl = new Option<string>("--ttl") { Description = "Lifetime: 90d, 12h, ...; 0 for no expiry", DefaultValueFactory = _ => "90d" };
        var create = new Command("create", "Create an API token and print it (the only time it is shown)") { name, ttl };
        create.SetAction(parse =>
        {
            if (!DurationText.TryParse(parse.GetValue(ttl)!, out var lifetime))
                return Fail(parse, "api-token create", $"--ttl '{parse.GetValue(ttl)}' is not a duration like 90d, 12h or 30m (0: no expiry)");
            var tokenName = parse.GetValue(name)!.Trim();
            if (tokenName.Length > ApiTokenStore.MaxNameLength)
                return Fail(parse, "api-token create", $"--name is longer than {ApiTokenStore.MaxNameLength} characters");

            return WithState(parse, "api-token create", () =>
            {
                var created = new ApiTokenStore(OpenOrInitialise(parse, dataDir, config), TimeProvider.System).Create(tokenName, lifetime);

                var output = parse.InvocationConfiguration.Output;
                output.WriteLine($"token: {created.Token}");
                output.WriteLine($"id: {created.Info.Id}");
                output.WriteLine($"expires: {(created.Info.ExpiresAt is { } e ? e.ToString("u") : "never")}");
                output.WriteLine("use it as: Authorization: Bearer " + created.Token);
                return 0;
            });
        });

        var json = new Option<bool>("--json") { Description = "JSON instead of a table" };
        var list = new Command("list", "List API tokens (never their secrets)") { json };
        list.SetAction(parse => WithState(parse, "api-token list", () =>
        {
            var tokens = new ApiTokenStore(OpenDatabase(parse, dataDir, config), TimeProvider.System).List();
            var now = TimeProvider.System.GetUtcNow();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                var array = new JsonArray(tokens.Select(t => (JsonNode)new JsonObject
                {
                    ["id"] = t.Id,
                    ["name"] = t.Name,
                    ["status"] = t.Status(now),
                    ["created_at"] = t.CreatedAt.ToString("o"),
                    ["expires_at"] = t.ExpiresAt?.ToString("o"),
                    ["revoked_at"] = t.RevokedAt?.ToString("o"),
                    ["last_used_at"] = t.LastUsedAt?.ToString("o"),
                }).ToArray());
                output.WriteLine(array.ToJsonString(Indented));
                return 0;
            }

            WriteTable(output, ["ID", "STATUS", "NAME", "CREATED", "EXPIRES", "LAST USED"], tokens.Select(t => new[]
            {
                t.Id, t.Status(now), t.Name.Length == 0 ? "-" : t.Name, t.CreatedAt.ToString("u"), t.ExpiresAt?.ToString("u") ?? "never",
                t.LastUsedAt?.ToString("u") ?? "never",
            }));
            return 0;
        }));

        var id = new Argument<string>("ID") { Description = "Token id (the 8 characters after s6_), or the whole token" };
        var revoke = new Command("revoke", "Revoke an API token; calls with it are refused from now on") { id };
        revoke.SetAction(parse => WithState(parse, "api-token revoke", () =>
        {
            var tokenId = parse.GetValue(id)!.Trim();
            if (ApiToken.TryParse(tokenId, out var fromToken, out _))
                tokenId = fromToken;
            if (!new ApiTokenStore(OpenDatabase(parse, dataDir, config), TimeProvider.System).Revoke(tokenId))
                return Fail(parse, "api-token revoke", $"no API token {tokenId}", ExitCodes.NotFound);
            parse.InvocationConfiguration.Output.WriteLine($"revoked API token {tokenId}");
            return 0;
        }));

        group.Subcommands.Add(create);
        group.Subcommands.Add(list);
        group.Subcommands.Add(revoke);
        return group;
    }

    private static JsonObject ProbeJson(ProbeRecord p, ProbeHealth h) => new()
    {
        ["id"] = p.Id,
        ["state"] = h.State,
        ["reasons"] = new JsonArray(h.Reasons.Select(r => (JsonNode)new JsonObject { ["code"] = r.Code, ["detail"] = r.Detail }).ToArray()),
        ["state_since"] = h.StateSince?.ToString("o"),
        ["hostname"] = p.Hostname,
        ["name"] = ProbeName(p.FactsJson),
        ["labels"] = new JsonObject(p.Labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
        ["joined_at"] = p.JoinedAt.ToString("o"),
        ["joined_from"] = p.JoinedFrom,
        ["token_id"] = p.TokenId,
        ["certificate_serial"] = p.CertificateSerial,
        ["certificate_not_after"] = p.CertificateNotAfter.ToString("o"),
        ["left_at"] = p.LeftAt?.ToString("o"),
        ["leave_reason"] = p.LeaveReason,
        ["last_heartbeat_at"] = h.LastHeartbeatAt?.ToString("o"),
        ["last_heartbeat_age_seconds"] = h.LastHeartbeatAge?.TotalSeconds,
        ["heartbeat_interval_seconds"] = h.HeartbeatInterval.TotalSeconds,
        ["clock_skew_ms"] = h.ClockSkew?.TotalMilliseconds,
        ["round_trip_ms"] = h.RoundTrip?.TotalMilliseconds,
        ["reported_state"] = h.ReportedState,
        ["reported_reason"] = h.ReportedReason,
        ["operator_suspended"] = h.OperatorSuspended,
        ["rates"] = new JsonObject
        {
            ["packets_per_second"] = h.Rates.PacketsPerSecond,
            ["drop_ratio"] = h.Rates.DropRatio,
            ["upload_bytes_per_second"] = h.Rates.UploadBytesPerSecond,
        },
        ["software_version"] = h.SoftwareVersion,
        ["policy_version"] = h.PolicyVersion,
        ["heartbeat"] = h.LastHeartbeat is { } heartbeat ? JsonNode.Parse(Google.Protobuf.JsonFormatter.Default.Format(heartbeat)) : null,
        ["facts"] = JsonNode.Parse(p.FactsJson),
    };

    /// <summary>The name given at join (<c>probe join --name</c>), kept in the host facts; null when none.</summary>
    private static string? ProbeName(string factsJson) =>
        JsonNode.Parse(factsJson)?["name"]?.GetValue<string>() is { Length: > 0 } name ? name : null;

    private static Command CreateProbe(Option<string> dataDir, Option<string> config)
    {
        var probe = new Command("probe", "Act on one probe: suspend, resume, upload-now, update-policy, revoke; list its commands");
        foreach (var (name, kind, description) in new[]
        {
            ("suspend", ProbeCommandKind.Suspend, "Stop capturing (uploads continue) until resumed"),
            ("resume", ProbeCommandKind.Resume, "Capture again after a suspend"),
            ("upload-now", ProbeCommandKind.UploadNow, "Upload the spool now, outside the upload window, once"),
        })
        {
            var id = new Argument<string>("ID") { Description = "Probe id (p-...)" };
            var action = new Command(name, description) { id };
            action.SetAction(parse => WithState(parse, "probe " + name, () =>
            {
                var commands = Commands(parse, dataDir, config);
                var issued = kind switch
                {
                    ProbeCommandKind.Suspend => commands.Suspend(parse.GetValue(id)!, IssuedBy),
                    ProbeCommandKind.Resume => commands.Resume(parse.GetValue(id)!, IssuedBy),
                    _ => commands.UploadNow(parse.GetValue(id)!, IssuedBy),
                };
                PrintIssued(parse, issued);
                return 0;
            }));
            probe.Subcommands.Add(action);
        }

        probe.Subcommands.Add(CreateUpdatePolicy(dataDir, config));

        var revokeId = new Argument<string>("ID") { Description = "Probe id (p-...)" };
        var reason = new Option<string>("--reason") { Description = "Kept with the probe's record, after who revoked it" };
        var revoke = new Command("revoke", "Revoke a probe: its certificates are refused from now on and its control stream is closed") { revokeId, reason };
        revoke.SetAction(parse => WithState(parse, "probe revoke", () =>
        {
            var probeId = parse.GetValue(revokeId)!;
            var revoker = new ProbeRevoker(OpenDatabase(parse, dataDir, config), TimeProvider.System, new ProbeNotifier());
            var outcome = revoker.Revoke(probeId, parse.GetValue(reason) ?? "", IssuedBy);
            if (outcome == ProbeRevokeOutcome.NotFound)
                throw new CliException(ExitCodes.NotFound, $"no probe {probeId}");
            parse.InvocationConfiguration.Output.WriteLine(outcome == ProbeRevokeOutcome.AlreadyRevoked
                ? $"{probeId} was already revoked; any certificate it still held is refused now"
                : $"revoked {probeId}: its certificates are refused and a running server closes its stream");
            return 0;
        }));
        probe.Subcommands.Add(revoke);

        var listId = new Argument<string>("ID") { Description = "Probe id; all probes if left out", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "JSON instead of a table" };
        var list = new Command("commands", "Commands issued, newest first, with their results") { listId, json };
        list.SetAction(parse => WithState(parse, "probe commands", () =>
        {
            var commands = Commands(parse, dataDir, config).List(RequireProbe(parse, dataDir, config, parse.GetValue(listId)));
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(new JsonArray(commands.Select(c => (JsonNode)new JsonObject
                {
                    ["id"] = c.Id,
                    ["probe_id"] = c.ProbeId,
                    ["kind"] = OperatorCommands.KindName(c.Kind),
                    ["status"] = c.Status,
                    ["issued_at"] = c.IssuedAt.ToString("o"),
                    ["issued_by"] = c.IssuedBy,
                    ["delivered_at"] = c.DeliveredAt?.ToString("o"),
                    ["result_at"] = c.ResultAt?.ToString("o"),
                    ["ok"] = c.Ok,
                    ["message"] = c.ResultMessage,
                    ["policy"] = c.Policy is { } p ? JsonNode.Parse(Google.Protobuf.JsonFormatter.Default.Format(p)) : null,
                }).ToArray()).ToJsonString(Indented));
                return 0;
            }

            WriteTable(output, ["ID", "PROBE", "KIND", "STATUS", "ISSUED", "MESSAGE"], commands.Select(c => new[]
            {
                c.Id, c.ProbeId, OperatorCommands.KindName(c.Kind), c.Status, c.IssuedAt.ToString("u"), c.ResultMessage ?? "",
            }));
            return 0;
        }));
        probe.Subcommands.Add(list);
        return probe;
    }

    private static Command CreateUpdatePolicy(Option<string> dataDir, Option<string> config)
    {
        var id = new Argument<string>("ID") { Description = "Probe id (p-...)" };
        var filter = new Option<string>("--capture-filter") { Description = "BPF expression; \"\" for the built-in IPv6 filter" };
        var snaplen = new Option<string>("--snaplen") { Description = "Bytes kept per frame, e.g. 256 or 64K; 0 for whole frames" };
        var rotateSize = new Option<string>("--rotate-size") { Description = "Close a spool file at this size, e.g. 64M or 1G" };
        var rotateAge = new Option<string>("--rotate-age") { Description = "Close a spool file at this age: 15m, 1h, ..." };
        var window = new Option<string>("--upload-window") { Description = "Daily upload window in UTC, HH:MM-HH:MM; 00:00-00:00 for any time" };
        var rate = new Option<string>("--upload-max-rate") { Description = "Upload bytes per second, e.g. 500K or 2M; 0 for no bound" };
        var heartbeat = new Option<string>("--heartbeat-interval") { Description = "Heartbeat interval: 10s, 1m, ..." };
        var interfaces = new Option<string>("--interfaces") { Description = "Capture interfaces, comma-separated; \"\" for the probe's own configuration" };
        var command = new Command("update-policy", "Send the probe its policy with these changes, under a new version")
        {
            id, filter, snaplen, rotateSize, rotateAge, window, rate, heartbeat, interfaces,
        };
        command.SetAction(parse => WithState(parse, "probe update-policy", () =>
        {
            var change = new PolicyChange
            {
                CaptureFilter = parse.GetValue(filter),
                Snaplen = (int?)Size(parse, snaplen, int.MaxValue),
                RotateSizeBytes = Size(parse, rotateSize, long.MaxValue),
                UploadMaxBytesPerSecond = Size(parse, rate, long.MaxValue),
                Interfaces = parse.GetValue(interfaces) is { } names ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : null,
            };
            if (parse.GetValue(rotateAge) is { } age)
            {
                if (!DurationText.TryParse(age, out var span) || span is null)
                    return Fail(parse, "probe update-policy", $"--rotate-age '{age}' is not a duration like 15m or 1h");
                change = change with { RotateAge = span };
            }

            if (parse.GetValue(heartbeat) is { } every)
            {
                if (!DurationText.TryParse(every, out var span) || span is null)
                    return Fail(parse, "probe update-policy", $"--heartbeat-interval '{every}' is not a duration like 10s or 1m");
                change = change with { HeartbeatInterval = span };
            }

            if (parse.GetValue(window) is { } text)
            {
                var parts = text.Split('-');
                if (parts.Length != 2
                    || !TimeSpan.TryParseExact(parts[0], "hh\\:mm", CultureInfo.InvariantCulture, out var start)
                    || !TimeSpan.TryParseExact(parts[1], "hh\\:mm", CultureInfo.InvariantCulture, out var end))
                    return Fail(parse, "probe update-policy", $"--upload-window '{text}' is not HH:MM-HH:MM");
                change = change with { UploadWindowStart = start, UploadWindowEnd = end };
            }

            var issued = Commands(parse, dataDir, config).UpdatePolicy(parse.GetValue(id)!, change, IssuedBy);
            PrintIssued(parse, issued);
            parse.InvocationConfiguration.Output.WriteLine($"policy version {issued.Policy!.Version}");
            return 0;
        }));
        return command;
    }

    /// <summary>A size option through the one size parser (<see cref="CliParsing.TryParseBytes"/>); null when not given.</summary>
    private static long? Size(ParseResult parse, Option<string> option, long max)
    {
        if (parse.GetValue(option) is not { } text)
            return null;
        if (!CliParsing.TryParseBytes(text, out var bytes) || bytes > max)
            throw new CliException(ExitCodes.Usage, $"{option.Name} '{text}' is not a size like 256, 64K, 2M or 1G");
        return bytes;
    }

    private static string IssuedBy => "cli:" + Environment.UserName;

    private static void PrintIssued(ParseResult parse, ProbeCommandInfo issued) =>
        parse.InvocationConfiguration.Output.WriteLine(
            $"issued {OperatorCommands.KindName(issued.Kind)} {issued.Id} to {issued.ProbeId}; a connected probe gets it within a few seconds, " +
            $"an offline one when it reconnects (see `survey6 server probe commands {issued.ProbeId}`)");

    private static OperatorCommands Commands(ParseResult parse, Option<string> dataDir, Option<string> config)
    {
        var (_, policy) = ControlConfiguration.Load(parse.GetValue(config), Overrides(parse, dataDir));
        return new OperatorCommands(OpenDatabase(parse, dataDir, config), TimeProvider.System, Microsoft.Extensions.Options.Options.Create(policy), new ProbeNotifier());
    }

    private static ProbeHealthQuery HealthQuery(ParseResult parse, Option<string> dataDir, Option<string> config, StateDatabase database)
    {
        var (health, policy) = ControlConfiguration.Load(parse.GetValue(config), Overrides(parse, dataDir));
        return new ProbeHealthQuery(database, TimeProvider.System, Microsoft.Extensions.Options.Options.Create(health), Microsoft.Extensions.Options.Options.Create(policy));
    }

    private static Dictionary<string, string?> Overrides(ParseResult parse, Option<string> dataDir)
    {
        var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (parse.GetValue(dataDir) is { } dir)
            overrides["Server:DataDirectory"] = Path.GetFullPath(dir);
        return overrides;
    }

    /// <summary>
    /// The server's options. Every command that works on the data directory gets it here, so this is where root becomes
    /// the directory's owner (<see cref="DirectoryOwner"/>): the files the command makes belong to the service user.
    /// </summary>
    private static ServerOptions LoadOptions(ParseResult parse, Option<string> dataDir, Option<string> config)
    {
        var options = ServerConfiguration.LoadServerOptions(parse.GetValue(config), Overrides(parse, dataDir));
        DirectoryOwner.Become(options.DataDirectory, parse);
        return options;
    }

    /// <summary>The existing state.db; a mistyped --data-dir must not quietly create an empty server.</summary>
    private static StateDatabase OpenDatabase(ParseResult parse, Option<string> dataDir, Option<string> config)
    {
        var directory = new ServerDataDirectory(LoadOptions(parse, dataDir, config).DataDirectory);
        CliPaths.RequireDirectory(directory.Root, "the data directory");
        if (!File.Exists(directory.StateDatabase))
        {
            if (Directory.Exists(directory.Root) && !CliPaths.MayList(directory.Root))
                throw new CliException(ExitCodes.Permission, $"{Environment.UserName} may not read the data directory {directory.Root}; run as its owner (sudo -u OWNER survey6 ...)");
            throw new CliException(ExitCodes.NotFound, $"no server state in {directory.Root} (run `survey6 server run` or `survey6 server token create` first, or pass --data-dir)");
        }

        // SQLite writes beside the database (journal, WAL) even to read: say who may, rather than "unable to open database file".
        CliPaths.RequireWritable(directory.StateDatabase, "the server state");
        CliPaths.RequireWritable(directory.Root, "the data directory");
        return StateDatabase.OpenAndMigrate(directory.StateDatabase);
    }

    /// <summary>
    /// The state.db of an existing data directory, made when the directory holds none yet (a server never started
    /// there). The directory itself must exist: only <c>server run</c> and <c>server token create</c> create one.
    /// </summary>
    private static StateDatabase OpenOrInitialise(ParseResult parse, Option<string> dataDir, Option<string> config)
    {
        var directory = new ServerDataDirectory(LoadOptions(parse, dataDir, config).DataDirectory);
        CliPaths.RequireDirectory(directory.Root, "the data directory");
        if (File.Exists(directory.StateDatabase))
            return OpenDatabase(parse, dataDir, config);
        CliPaths.RequireWritable(directory.Root, "the data directory");
        directory.EnsureCreated();
        return StateDatabase.OpenAndMigrate(directory.StateDatabase);
    }

    /// <summary>The probe id given, after checking that state.db knows it; null stays null (all probes).</summary>
    private static string? RequireProbe(ParseResult parse, Option<string> dataDir, Option<string> config, string? probeId)
    {
        if (probeId is null)
            return null;
        if (new ProbeStore(OpenDatabase(parse, dataDir, config), TimeProvider.System).Get(probeId) is null)
            throw new CliException(ExitCodes.NotFound, $"no probe {probeId}");
        return probeId;
    }

    private static string FormatLabels(IReadOnlyDictionary<string, string> labels) =>
        labels.Count == 0 ? "-" : string.Join(',', labels.Select(l => $"{l.Key}={l.Value}"));

    private static void WriteTable(TextWriter output, string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        foreach (var row in all)
            output.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
    }

    /// <summary>Runs a command on state.db; what goes wrong reaches <see cref="CliFailure"/> with its exit status.</summary>
    private static int WithState(ParseResult parse, string command, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (ProbeCommandException e)
        {
            throw new CliException(e.Message.StartsWith("no probe ", StringComparison.Ordinal) ? ExitCodes.NotFound : ExitCodes.Failed, e.Message);
        }
    }

    /// <summary>As <see cref="WithState"/>, for a command that awaits.</summary>
    private static async Task<int> WithStateAsync(ParseResult parse, string command, Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (ProbeCommandException e)
        {
            throw new CliException(e.Message.StartsWith("no probe ", StringComparison.Ordinal) ? ExitCodes.NotFound : ExitCodes.Failed, e.Message);
        }
    }

    /// <summary>One line on stderr; by default the status of a mistake in the command line.</summary>
    private static int Fail(ParseResult parse, string command, string message, int status = ExitCodes.Usage)
    {
        parse.InvocationConfiguration.Error.WriteLine($"survey6 server {command}: {message}");
        return status;
    }
}
