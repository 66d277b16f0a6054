using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts;
using Survey6.Server.Enrollment;
using Survey6.Server.Hosting;
using Survey6.Server.Pki;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Api;

/// <summary>The handlers of /api/v1. They read through the query interfaces and answer errors with Problem Details.</summary>
internal static class ApiEndpoints
{
    private const int MaxDescriptionLength = 500;
    private const int MaxReasonLength = 500;
    private const int MaxUses = 100_000;

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/probes", ListProbes).WithName("listProbes").WithTags("probes")
            .WithSummary("Probes, oldest join first; ?state= filters, ?sort= orders (name, state, last_heartbeat, version, capture_rate, drops, joined; -key descending)");
        api.MapGet("/probes/{id}", GetProbe).WithName("getProbe").WithTags("probes")
            .WithSummary("One probe with its host facts and certificates").ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/probes/{id}/history", GetProbeHistory).WithName("getProbeHistory").WithTags("probes")
            .WithSummary("The states a probe went through, newest first").ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/probes/{id}/minutes", GetProbeMinutes).WithName("getProbeMinutes").WithTags("probes")
            .WithSummary("A probe's per-minute heartbeat rollups in [since, until), oldest first; default the last 24 hours")
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/probes/{id}/events", GetProbeEvents).WithName("getProbeEvents").WithTags("probes", "events")
            .WithSummary("A probe's events, newest first").ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/probes/{id}/revoke", RevokeProbe).WithName("revokeProbe").WithTags("probes")
            .WithSummary("Revoke a probe: state revoked, every certificate it holds refused from now on").ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/events", ListEvents).WithName("listEvents").WithTags("events")
            .WithSummary("Server events, newest first; ?kind= and ?probe= filter");
        api.MapGet("/uploads", ListUploads).WithName("listUploads").WithTags("uploads")
            .WithSummary("Stored captures, newest first; ?probe= filters");
        api.MapGet("/tokens", ListTokens).WithName("listJoinTokens").WithTags("tokens")
            .WithSummary("Join tokens (never their secrets)");
        api.MapPost("/tokens", CreateToken).WithName("createJoinToken").WithTags("tokens")
            .WithSummary("Create a join token; the answer carries the token and the probe's join command");
        api.MapDelete("/tokens/{id}", RevokeToken).WithName("revokeJoinToken").WithTags("tokens")
            .WithSummary("Revoke a join token; probes that joined with it keep their certificates").ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static async Task<Results<Ok<Page<ProbeDto>>, ProblemHttpResult>> ListProbes(
        string? state, string? sort, int? limit, string? cursor, IProbeQueries probes, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        if (state is not null && !ProbeStateNames.All.Contains(state))
            return ApiProblems.BadRequest($"state must be one of {string.Join(", ", ProbeStateNames.All)}");
        var order = new Control.ProbeSort(Control.ProbeSortKey.Joined);
        if (!string.IsNullOrEmpty(sort) && !Control.ProbeSort.TryParse(sort, out order))
            return ApiProblems.BadRequest($"sort must be one of {string.Join(", ", Control.ProbeSort.Names.Select(n => n.Name))}, with a leading - for descending");
        if (Paging(options.Value, limit, cursor, out var page) is { } problem)
            return problem;
        try
        {
            return TypedResults.Ok(await probes.ListAsync(state, order, page, cancellationToken).ConfigureAwait(false));
        }
        catch (InvalidCursorException e)
        {
            return ApiProblems.BadRequest(e.Message);
        }
    }

    private static async Task<Results<Ok<ProbeDetailDto>, ProblemHttpResult>> GetProbe(
        string id, IProbeQueries probes, CancellationToken cancellationToken) =>
        await probes.GetAsync(id, cancellationToken).ConfigureAwait(false) is { } probe
            ? TypedResults.Ok(probe)
            : ApiProblems.NotFound($"no probe {id}");

    private static async Task<Results<Ok<Page<ProbeHistoryEntryDto>>, ProblemHttpResult>> GetProbeHistory(
        string id, int? limit, string? cursor, IProbeQueries probes, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        if (Paging(options.Value, limit, cursor, out var page) is { } problem)
            return problem;
        try
        {
            return await probes.GetHistoryAsync(id, page, cancellationToken).ConfigureAwait(false) is { } history
                ? TypedResults.Ok(history)
                : ApiProblems.NotFound($"no probe {id}");
        }
        catch (InvalidCursorException e)
        {
            return ApiProblems.BadRequest(e.Message);
        }
    }

    private static async Task<Results<Ok<Page<ProbeMinuteDto>>, ProblemHttpResult>> GetProbeMinutes(
        string id, DateTimeOffset? since, DateTimeOffset? until, IProbeQueries probes, Control.ProbeHealthQuery health, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var to = until ?? time.GetUtcNow().AddMinutes(1);
        var from = since ?? to.AddDays(-1);
        if (from >= to)
            return ApiProblems.BadRequest("since must be before until");
        if (await probes.GetAsync(id, cancellationToken).ConfigureAwait(false) is null)
            return ApiProblems.NotFound($"no probe {id}");
        var minutes = (await health.HistoryAsync(id, from, to, cancellationToken).ConfigureAwait(false)).Select(m => new ProbeMinuteDto(
            m.Minute, m.Heartbeats, m.Received, m.KernelDropped, m.InterfaceDropped, m.QueueDropped, m.UploadedFiles, m.UploadedBytes,
            m.UploadFailures, m.SpoolFilesMax, m.SpoolBytesMax, m.SpoolOldestAgeMax.TotalSeconds, m.FreeDiskMin, m.CpuPercentMean, m.RssMax,
            m.ReportedState)).ToList();
        return TypedResults.Ok(new Page<ProbeMinuteDto>(minutes, null));
    }

    private static async Task<Results<Ok<Page<EventDto>>, ProblemHttpResult>> GetProbeEvents(
        string id, string? kind, int? limit, string? cursor, IProbeQueries probes, EventQueries events, IOptions<ApiOptions> options,
        CancellationToken cancellationToken)
    {
        if (await probes.GetAsync(id, cancellationToken).ConfigureAwait(false) is null)
            return ApiProblems.NotFound($"no probe {id}");
        return Events(events, options.Value, id, kind, limit, cursor);
    }

    private static Results<Ok<Page<EventDto>>, ProblemHttpResult> ListEvents(
        string? probe, string? kind, int? limit, string? cursor, EventQueries events, IOptions<ApiOptions> options) =>
        Events(events, options.Value, probe, kind, limit, cursor);

    private static Results<Ok<Page<EventDto>>, ProblemHttpResult> Events(
        EventQueries events, ApiOptions options, string? probe, string? kind, int? limit, string? cursor)
    {
        if (Paging(options, limit, cursor, out var page) is { } problem)
            return problem;
        try
        {
            return TypedResults.Ok(events.List(probe, kind, page));
        }
        catch (InvalidCursorException e)
        {
            return ApiProblems.BadRequest(e.Message);
        }
    }

    private static async Task<Results<Ok<Page<UploadDto>>, ProblemHttpResult>> ListUploads(
        string? probe, int? limit, string? cursor, IUploadQueries uploads, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        if (Paging(options.Value, limit, cursor, out var page) is { } problem)
            return problem;
        try
        {
            return TypedResults.Ok(await uploads.ListAsync(probe, page, cancellationToken).ConfigureAwait(false));
        }
        catch (InvalidCursorException e)
        {
            return ApiProblems.BadRequest(e.Message);
        }
    }

    private static Ok<Page<JoinTokenDto>> ListTokens(TokenStore tokens, TimeProvider time)
    {
        var now = time.GetUtcNow();
        return TypedResults.Ok(new Page<JoinTokenDto>(tokens.List().Select(t => ToDto(t, now)).ToList(), null));
    }

    private static Results<Created<CreatedJoinTokenDto>, ValidationProblem> CreateToken(
        [FromBody] CreateJoinTokenRequest? request, HttpContext http, TokenStore tokens, EventStore events, ServerPki pki, TimeProvider time,
        ILoggerFactory loggers)
    {
        request ??= new CreateJoinTokenRequest();
        var errors = ValidateToken(request, out var ttl, out var uses);
        if (errors.Count > 0)
            return TypedResults.ValidationProblem(errors, detail: "the join token was not created");

        var labels = request.Labels ?? [];
        var description = request.Description ?? "";
        var created = tokens.Create(ttl, uses, labels, description);
        var actor = ApiAuthentication.Actor(http.User);
        events.Append(ApiEventKinds.JoinTokenCreated, null, ProbeCallContextExtensions.RemoteAddress(http), $"token {created.Info.Id} by {actor}");
        ApiLog.JoinTokenCreated(Logger(loggers), created.Info.Id, actor);
        var url = ServerEndpoints.From(http.RequestServices).AdvertisedUrl.ToString().TrimEnd('/');
        var pin = pki.Authority.Pin;
        return TypedResults.Created((string?)null, new CreatedJoinTokenDto(
            created.Token, JoinCommand.Format(url, created.Token, pin), url, pin, ToDto(created.Info, time.GetUtcNow())));
    }

    /// <summary>Checks a token request as the API and the web UI accept it; empty when it is fine.</summary>
    internal static Dictionary<string, string[]> ValidateToken(CreateJoinTokenRequest request, out TimeSpan? ttl, out int uses)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!DurationText.TryParse(request.Ttl ?? "24h", out ttl))
            errors["ttl"] = ["not a duration like 24h, 30m or 7d (\"0\": no expiry)"];
        uses = request.Uses ?? 1;
        if (uses is < 1 or > MaxUses)
            errors["uses"] = [$"must be between 1 and {MaxUses}"];
        if (ProbeLabels.Check(request.Labels) is { } labelProblem)
            errors["labels"] = [labelProblem];
        if ((request.Description ?? "").Length > MaxDescriptionLength)
            errors["description"] = [$"at most {MaxDescriptionLength} characters"];
        return errors;
    }

    private static Results<NoContent, ProblemHttpResult> RevokeToken(
        string id, HttpContext http, TokenStore tokens, EventStore events, ILoggerFactory loggers)
    {
        if (!JoinToken.IsValidId(id) || !tokens.Revoke(id))
            return ApiProblems.NotFound($"no join token {id}");
        var actor = ApiAuthentication.Actor(http.User);
        events.Append(ApiEventKinds.JoinTokenRevoked, null, ProbeCallContextExtensions.RemoteAddress(http), $"token {id} by {actor}");
        ApiLog.JoinTokenRevoked(Logger(loggers), id, actor);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<ProbeDetailDto>, ProblemHttpResult>> RevokeProbe(
        string id, [FromBody] RevokeProbeRequest? request, HttpContext http, IProbeCommands commands, IProbeQueries probes,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var reason = (request?.Reason ?? "").Trim();
        if (reason.Length > MaxReasonLength)
            return ApiProblems.BadRequest($"reason: at most {MaxReasonLength} characters");
        var actor = ApiAuthentication.Actor(http.User);
        var outcome = await commands.RevokeAsync(id, reason, actor, ProbeCallContextExtensions.RemoteAddress(http), cancellationToken).ConfigureAwait(false);
        if (outcome == ProbeRevokeOutcome.NotFound)
            return ApiProblems.NotFound($"no probe {id}");
        if (outcome == ProbeRevokeOutcome.Revoked)
            ApiLog.ProbeRevoked(Logger(loggers), id, actor, reason);
        return await probes.GetAsync(id, cancellationToken).ConfigureAwait(false) is { } probe
            ? TypedResults.Ok(probe)
            : ApiProblems.NotFound($"no probe {id}");
    }

    private static ILogger Logger(ILoggerFactory loggers) => loggers.CreateLogger("Survey6.Server.Api");

    private static ProblemHttpResult? Paging(ApiOptions options, int? limit, string? cursor, out PageRequest page)
    {
        page = new PageRequest(limit ?? options.DefaultPageSize, string.IsNullOrEmpty(cursor) ? null : cursor);
        return page.Limit < 1 || page.Limit > options.MaxPageSize
            ? ApiProblems.BadRequest($"limit must be between 1 and {options.MaxPageSize}")
            : null;
    }

    internal static JoinTokenDto ToDto(JoinTokenInfo token, DateTimeOffset now) => new(
        token.Id, token.Status(now), token.Description, token.Labels, token.CreatedAt, token.ExpiresAt, token.MaxUses, token.Used, token.RevokedAt);
}
