using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
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
            try
            {
                var options = ServerConfiguration.LoadServerOptions(parse.GetValue(config), overrides);
                DirectoryOwner.Become(options.DataDirectory, parse);
                var builder = ServerApplication.CreateBuilder(parse.GetValue(config), overrides);
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
            catch (Exception e) when (e is OptionsValidationException or IOException or FormatException or UnauthorizedAccessException)
            {
                return Fail(parse, "run", e.Message);
            }
        });
        return command;
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
            if (!CliParsing.TryParseDuration(parse.GetValue(ttl)!, out var lifetime))
                return Fail(parse, "token create", $"--ttl '{parse.GetValue(ttl)}' is not a duration like 24h, 30m or 7d (0: no expiry)");
            if (parse.GetValue(uses) < 1)
                return Fail(parse, "token create", "--uses must be at least 1");
            if (!CliParsing.TryParseLabels(parse.GetValue(labels), out var labelMap, out var labelError))
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
                return Fail(parse, "token revoke", $"no token {tokenId}");
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
        command.SetAction(parse => WithState(parse, "probes", () =>
        {
            var database = OpenDatabase(parse, dataDir, config);
            var probes = new ProbeStore(database, TimeProvider.System).List();
            var health = HealthQuery(parse, dataDir, config, database).List().ToDictionary(h => h.ProbeId, StringComparer.Ordinal);
            var output = parse.InvocationConfiguration.Output;
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
            if (!CliParsing.TryParseDuration(parse.GetValue(ttl)!, out var lifetime))
                return Fail(parse, "api-token create", $"--ttl '{parse.GetValue(ttl)}' is not a duration like 90d, 12h or 30m (0: no expiry)");
            var tokenName = parse.GetValue(name)!.Trim();
            if (tokenName.Length > ApiTokenStore.MaxNameLength)
                return Fail(parse, "api-token create", $"--name is longer than {ApiTokenStore.MaxNameLength} characters");

            return WithState(parse, "api-token create", () =>
            {
                // Like `token create`, this may run before the server ever started: it creates the data directory if needed.
                var directory = new ServerDataDirectory(LoadOptions(parse, dataDir, config).DataDirectory);
                directory.EnsureCreated();
                var database = StateDatabase.OpenAndMigrate(directory.StateDatabase);
                var created = new ApiTokenStore(database, TimeProvider.System).Create(tokenName, lifetime);

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
                return Fail(parse, "api-token revoke", $"no API token {tokenId}");
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
        var reason = new Option<string>("--reason") { Description = "Kept with the probe's record", DefaultValueFactory = _ => "revoked by the operator" };
        var revoke = new Command("revoke", "Revoke a probe: its certificates are refused from now on and its control stream is closed") { revokeId, reason };
        revoke.SetAction(parse => WithState(parse, "probe revoke", () =>
        {
            var probeId = parse.GetValue(revokeId)!;
            Commands(parse, dataDir, config).Revoke(probeId, parse.GetValue(reason)!, IssuedBy);
            parse.InvocationConfiguration.Output.WriteLine($"revoked {probeId}: its certificates are refused and a running server closes its stream");
            return 0;
        }));
        probe.Subcommands.Add(revoke);

        var listId = new Argument<string>("ID") { Description = "Probe id; all probes if left out", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "JSON instead of a table" };
        var list = new Command("commands", "Commands issued, newest first, with their results") { listId, json };
        list.SetAction(parse => WithState(parse, "probe commands", () =>
        {
            var commands = Commands(parse, dataDir, config).List(parse.GetValue(listId));
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
        var snaplen = new Option<int?>("--snaplen") { Description = "Bytes kept per frame; 0 for whole frames" };
        var rotateSize = new Option<long?>("--rotate-size") { Description = "Close a spool file at this many bytes" };
        var rotateAge = new Option<string>("--rotate-age") { Description = "Close a spool file at this age: 15m, 1h, ..." };
        var window = new Option<string>("--upload-window") { Description = "Daily upload window in UTC, HH:MM-HH:MM; 00:00-00:00 for any time" };
        var rate = new Option<long?>("--upload-max-rate") { Description = "Upload bytes per second; 0 for no bound" };
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
                Snaplen = parse.GetValue(snaplen),
                RotateSizeBytes = parse.GetValue(rotateSize),
                UploadMaxBytesPerSecond = parse.GetValue(rate),
                Interfaces = parse.GetValue(interfaces) is { } names ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : null,
            };
            if (parse.GetValue(rotateAge) is { } age)
            {
                if (!CliParsing.TryParseDuration(age, out var span) || span is null)
                    return Fail(parse, "probe update-policy", $"--rotate-age '{age}' is not a duration like 15m or 1h");
                change = change with { RotateAge = span };
            }

            if (parse.GetValue(heartbeat) is { } every)
            {
                if (!CliParsing.TryParseDuration(every, out var span) || span is null)
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
        if (!File.Exists(directory.StateDatabase))
            throw new DirectoryNotFoundException($"no server state in {directory.Root} (run `survey6 server run` or `survey6 server token create` first, or pass --data-dir)");
        return StateDatabase.OpenAndMigrate(directory.StateDatabase);
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

    private static int WithState(ParseResult parse, string command, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is DirectoryNotFoundException or ProbeCommandException or UnauthorizedAccessException)
        {
            return Fail(parse, command, e.Message);
        }
    }

    private static int Fail(ParseResult parse, string command, string message)
    {
        parse.InvocationConfiguration.Error.WriteLine($"survey6 server {command}: {message}");
        return 1;
    }
}
