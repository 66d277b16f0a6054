using System.Reflection;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Survey6.Contracts;
using Survey6.Data.Views;
using Survey6.Packets.Files;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Enrollment;
using Survey6.Server.Hosting;
using Survey6.Server.Pki;
using Survey6.Server.Security;
using Survey6.Server.Storage;
using Survey6.Server.Web.Components;

namespace Survey6.Server.Web;

/// <summary>
/// The operator web UI on the HTTP endpoint: login (cookie scheme <see cref="ApiAuthentication.CookieScheme"/>,
/// so a logged-in browser may call /api/v1 too), the fleet page with live updates over server-sent
/// events, and the probe page with Suspend and Resume. Every POST checks the antiforgery token.
/// </summary>
public static partial class WebHostingExtensions
{
    public const string Policy = "web";
    public const string AdminRole = "admin";

    /// <summary>The largest form body a page may post (the token form with 64 labels fits).</summary>
    public const long MaxFormBytes = 64 << 10;

    private static readonly JsonSerializerOptions EventJson = new(JsonSerializerDefaults.Web);

    public static IServiceCollection AddSurvey6Web(this IServiceCollection services)
    {
        services.AddSurvey6DataProtection();
        services.AddSingleton<WebAdminStore>();
        services.AddSingleton<WebData>();
        // Static server rendering only: the pages are Razor components rendered to HTML, with no interactive circuit.
        services.AddRazorComponents();
        // The data page's ledger and lake readers (IPipelineViewSource, IDatasetSummarySource) belong to the
        // aggregator; the program that hosts the server registers them, and the page says when there are none.
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "survey6.af";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.FormFieldName = "__af";
            o.HeaderName = ApiAuthentication.AntiforgeryHeader; // for cookie-authenticated API writes; forms still use the field
        });
        services.AddAuthentication().AddCookie(ApiAuthentication.CookieScheme, o =>
        {
            o.Cookie.Name = "survey6.session";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = "/login";
            o.LogoutPath = "/logout";
            o.ExpireTimeSpan = TimeSpan.FromHours(8);
            o.SlidingExpiration = true;
            o.Events.OnValidatePrincipal = async context =>
            {
                // A password change or a logout (in any process) ends every session issued before it.
                var admin = context.HttpContext.RequestServices.GetRequiredService<WebAdminStore>();
                if (!admin.IsSessionCurrent(context.Principal?.FindFirst(WebAdminStore.SessionStampClaim)?.Value))
                {
                    context.RejectPrincipal();
                    await context.HttpContext.SignOutAsync(ApiAuthentication.CookieScheme).ConfigureAwait(false);
                }
            };
        });
        services.AddAuthorizationBuilder().AddPolicy(Policy, p => p.AddAuthenticationSchemes(ApiAuthentication.CookieScheme).RequireAuthenticatedUser());
        return services;
    }

    public static WebApplication MapSurvey6Web(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var admin = app.Services.GetRequiredService<WebAdminStore>();
        if (admin.EnsurePassword() is { } password)
        {
            // Never to the log (journald keeps it, and more people read logs than the data directory): an owner-only file.
            var file = app.Services.GetRequiredService<ServerPki>().Directory.AdminPasswordFile;
            SecureFiles.WriteAtomically(file, password + "\n", SecureFiles.OwnerOnlyFile);
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Survey6.Server.Web");
            WebLog.AdminPasswordCreated(logger, WebAdminStore.UserName, file);
        }

        var web = app.MapGroup("").WithMetadata(OperatorEndpointMetadata.Instance).ExcludeFromDescription().AddEndpointFilter(async (context, next) =>
        {
            var headers = context.HttpContext.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers.CacheControl = "no-store";
            // Forms are small: a bigger body is refused before anything (antiforgery included) reads it.
            var request = context.HttpContext.Request;
            if (request.ContentLength > MaxFormBytes)
                return Message("Refused", $"The form is larger than {MaxFormBytes / 1024} KiB.", StatusCodes.Status413PayloadTooLarge);
            if (context.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
                limit.MaxRequestBodySize = MaxFormBytes;
            try
            {
                return await next(context).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return Message("Refused", $"The form is larger than {MaxFormBytes / 1024} KiB.", StatusCodes.Status413PayloadTooLarge);
            }
            catch (Exception e) when (e is AntiforgeryValidationException or InvalidDataException)
            {
                // A form ASP.NET will not parse (a null character, say): refused like a forged one, not a 500.
                return Message("Refused", "This form could not be read.", StatusCodes.Status400BadRequest);
            }
        });

        web.MapGet("/assets/{name}", (string name) => Asset(name));
        web.MapGet("/login", (HttpContext context, IAntiforgery antiforgery, string? returnUrl) =>
            Login(antiforgery.GetAndStoreTokens(context), returnUrl, null));
        web.MapPost("/login", LoginAsync);
        var pages = web.MapGroup("").RequireAuthorization(Policy);
        // Authenticated like the pages: the form's antiforgery token is bound to the logged-in user.
        pages.MapPost("/logout", async (HttpContext context, IAntiforgery antiforgery, WebAdminStore admin) =>
        {
            // Open to anyone (an expired session just lands on the login page), so no policy reads the cookie here; the
            // form's token was issued to the logged-in user and only validates against that user.
            if ((await context.AuthenticateAsync(ApiAuthentication.CookieScheme).ConfigureAwait(false)).Principal is { } user)
                context.User = user;
            if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
                return Refused();
            admin.EndAllSessions(); // a copy of the cookie must not outlive the logout
            await context.SignOutAsync(ApiAuthentication.CookieScheme).ConfigureAwait(false);
            return Results.Redirect("/login", preserveMethod: false);
        });
        pages.MapGet("/", FleetAsync);
        pages.MapGet("/map", async (HttpContext context, IAntiforgery antiforgery, WebData data) =>
            Component<MapPage>(new()
            {
                [nameof(MapPage.Probes)] = await data.FleetAsync(context.RequestAborted).ConfigureAwait(false),
                [nameof(MapPage.Tokens)] = antiforgery.GetAndStoreTokens(context),
            }));
        pages.MapGet("/events/fleet", FleetEventsAsync);
        pages.MapGet("/probes/{id}", async (string id, string? done, HttpContext context, IAntiforgery antiforgery, WebData data, ProbeCommands commands) =>
            await data.ProbeAsync(id, context.RequestAborted).ConfigureAwait(false) is { } probe
                ? (IResult)Component<ProbePage>(new()
                {
                    [nameof(ProbePage.Probe)] = probe,
                    [nameof(ProbePage.Live)] = await LiveAsync(data, commands, id, context.RequestAborted).ConfigureAwait(false),
                    [nameof(ProbePage.Tokens)] = antiforgery.GetAndStoreTokens(context),
                    [nameof(ProbePage.Message)] = done,
                })
                : Message("Not found", $"No probe {id}.", StatusCodes.Status404NotFound));
        pages.MapGet("/probes/{id}/live", async (string id, HttpContext context, WebData data, ProbeCommands commands) =>
            await data.ProbeAsync(id, context.RequestAborted).ConfigureAwait(false) is { } probe
                ? (IResult)Component<ProbeLivePanel>(new()
                {
                    [nameof(ProbeLivePanel.Probe)] = probe,
                    [nameof(ProbeLivePanel.Live)] = await LiveAsync(data, commands, id, context.RequestAborted).ConfigureAwait(false),
                })
                : Results.NotFound());
        pages.MapPost("/probes/{id}/suspend", (string id, HttpContext context, IAntiforgery antiforgery, ProbeCommands commands) =>
            CommandAsync(context, antiforgery, id, "suspend", user => commands.Suspend(id, user)));
        pages.MapPost("/probes/{id}/resume", (string id, HttpContext context, IAntiforgery antiforgery, ProbeCommands commands) =>
            CommandAsync(context, antiforgery, id, "resume", user => commands.Resume(id, user)));
        pages.MapPost("/probes/{id}/upload-now", (string id, HttpContext context, IAntiforgery antiforgery, ProbeCommands commands) =>
            CommandAsync(context, antiforgery, id, "upload now", user => commands.UploadNow(id, user)));
        pages.MapPost("/probes/{id}/revoke", RevokeProbeAsync);
        pages.MapGet("/tokens", (HttpContext context, IAntiforgery antiforgery, TokenStore tokens, TimeProvider time, string? done) =>
            Tokens(tokens, time, antiforgery.GetAndStoreTokens(context), TokenForm.Default, message: done));
        pages.MapPost("/tokens", CreateTokenAsync);
        pages.MapPost("/tokens/{id}/revoke", RevokeTokenAsync);
        pages.MapGet("/data", DataAsync);
        return app;
    }

    private static async Task<IResult> FleetAsync(
        string? state, string? label, string? q, string? sort, int? limit, string? cursor, HttpContext context, IAntiforgery antiforgery, WebData data)
    {
        var order = FleetQuery.DefaultSort;
        if (!string.IsNullOrEmpty(sort) && !ProbeSort.TryParse(sort, out order))
            return Message("Refused", $"The fleet cannot be sorted by {sort}.", StatusCodes.Status400BadRequest);
        var size = limit ?? FleetQuery.DefaultPageSize;
        if (size is < 1 or > FleetQuery.MaxPageSize)
            return Message("Refused", $"A fleet page shows 1 to {FleetQuery.MaxPageSize} probes.", StatusCodes.Status400BadRequest);
        try
        {
            var view = await data.FleetPageAsync(new FleetFilter(state, label, q), order, new PageRequest(size, string.IsNullOrEmpty(cursor) ? null : cursor),
                context.RequestAborted).ConfigureAwait(false);
            return Component<FleetPage>(new() { [nameof(FleetPage.View)] = view, [nameof(FleetPage.Tokens)] = antiforgery.GetAndStoreTokens(context) });
        }
        catch (InvalidCursorException)
        {
            return Message("Refused", "This page's address does not come from the fleet page; start again from the first page.", StatusCodes.Status400BadRequest);
        }
    }

    private static async Task<IResult> LoginAsync(HttpContext context, IAntiforgery antiforgery, WebAdminStore admin)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return Refused();
        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        string? user = form["username"], password = form["password"], returnUrl = form["returnUrl"];
        if (WebAdminStore.CheckLengths(user, password) is { } problem)
            return Login(antiforgery.GetAndStoreTokens(context), null, "Refused: " + problem + ".", StatusCodes.Status400BadRequest);
        switch (admin.Login(user, password, ProbeCallContextExtensions.RemoteIp(context)))
        {
            case WebLoginResult.Ok:
                var identity = new ClaimsIdentity(
                    [new Claim(ClaimTypes.Name, user!), new Claim(ClaimTypes.Role, AdminRole), new Claim(WebAdminStore.SessionStampClaim, admin.CurrentSessionStamp())],
                    ApiAuthentication.CookieScheme);
                await context.SignInAsync(ApiAuthentication.CookieScheme, new ClaimsPrincipal(identity)).ConfigureAwait(false);
                return Results.Redirect(IsLocalPath(returnUrl) ? returnUrl! : "/", preserveMethod: false);
            case WebLoginResult.LockedOut:
                return Login(antiforgery.GetAndStoreTokens(context), returnUrl, "Too many failed logins: this account is locked for a few minutes.", StatusCodes.Status429TooManyRequests);
            default:
                return Login(antiforgery.GetAndStoreTokens(context), returnUrl, "Wrong user name or password.", StatusCodes.Status401Unauthorized);
        }
    }

    /// <summary>
    /// A path of this site, safe to redirect to: starts with one slash, and holds printable ASCII only, without
    /// backslashes. Browsers drop tabs and newlines from URLs and read a backslash as a slash, so <c>/\t/evil</c> or
    /// <c>/\\evil</c> would leave the site; a control character would also break the Location header.
    /// </summary>
    internal static bool IsLocalPath(string? url)
    {
        if (string.IsNullOrEmpty(url) || url[0] != '/' || url.StartsWith("//", StringComparison.Ordinal))
            return false;
        foreach (var c in url)
        {
            if (c is < '!' or > '~' or '\\')
                return false;
        }

        return true;
    }

    private static async Task<IResult> CommandAsync(HttpContext context, IAntiforgery antiforgery, string id, string what, Func<string, ProbeCommandInfo> issue)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return Refused();
        try
        {
            var info = issue("web:" + (context.User.Identity?.Name ?? "?"));
            return Results.Redirect($"/probes/{Uri.EscapeDataString(id)}?done={Uri.EscapeDataString($"{what} issued as {info.Id}")}", preserveMethod: false);
        }
        catch (ProbeCommandException e)
        {
            return Message("Refused", e.Message, StatusCodes.Status409Conflict);
        }
    }

    private static async Task<ProbeLive> LiveAsync(WebData data, ProbeCommands commands, string id, CancellationToken cancellationToken) =>
        new(data.Now, await data.HistoryAsync(id, TimeSpan.FromHours(24), cancellationToken).ConfigureAwait(false), commands.List(id, 20), data.Events(id, 30), data.Uploads(id, 20));

    private static async Task<IResult> RevokeProbeAsync(string id, HttpContext context, IAntiforgery antiforgery, ProbeRevoker revoker, WebData data, ILoggerFactory loggers)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return Refused();
        if (await data.ProbeAsync(id, context.RequestAborted).ConfigureAwait(false) is null)
            return Message("Not found", $"No probe {id}.", StatusCodes.Status404NotFound);
        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        var reason = (form["reason"].ToString() ?? "").Trim();
        if (reason.Length > 500)
            return Message("Refused", "The reason may have at most 500 characters.", StatusCodes.Status400BadRequest);
        var actor = "web:" + (context.User.Identity?.Name ?? "?");
        revoker.Revoke(id, reason, actor, context.Connection.RemoteIpAddress?.ToString());
        ApiLog.ProbeRevoked(loggers.CreateLogger("Survey6.Server.Web"), id, actor, reason);
        return Results.Redirect($"/probes/{Uri.EscapeDataString(id)}?done={Uri.EscapeDataString("revoked")}", preserveMethod: false);
    }

    private static async Task<IResult> CreateTokenAsync(
        HttpContext context, IAntiforgery antiforgery, TokenStore tokens, EventStore events, ServerPki pki, TimeProvider time, ILoggerFactory loggers)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return Refused();
        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        var input = new TokenForm(form["ttl"].ToString(), form["uses"].ToString(), form["labels"].ToString(), form["description"].ToString());
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var labels = ParseLabels(input.Labels, errors);
        int? uses = int.TryParse(input.Uses.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;
        if (uses is null)
            errors["uses"] = ["a whole number, at least 1"];
        var request = new CreateJoinTokenRequest { Ttl = input.Ttl.Trim(), Uses = uses ?? 1, Labels = labels, Description = input.Description.Trim() };
        var checks = ApiEndpoints.ValidateToken(request, out var ttl, out var count);
        foreach (var (key, value) in checks)
            errors.TryAdd(key, value);
        var tokenSet = antiforgery.GetAndStoreTokens(context);
        if (errors.Count > 0)
            return Tokens(tokens, time, tokenSet, input, errors: errors, status: StatusCodes.Status400BadRequest);

        var created = tokens.Create(ttl, count, labels, request.Description!);
        var actor = "web:" + (context.User.Identity?.Name ?? "?");
        events.Append(ApiEventKinds.JoinTokenCreated, null, ProbeCallContextExtensions.RemoteAddress(context), $"token {created.Info.Id} by {actor}");
        ApiLog.JoinTokenCreated(loggers.CreateLogger("Survey6.Server.Web"), created.Info.Id, actor);
        var url = ServerEndpoints.From(context.RequestServices).AdvertisedUrl.ToString().TrimEnd('/');
        var pin = pki.Authority.Pin;
        var shown = new CreatedJoinTokenDto(created.Token, JoinCommand.Format(url, created.Token, pin), url, pin, ApiEndpoints.ToDto(created.Info, time.GetUtcNow()));
        // Answered directly, not redirected: the secret exists only in this response.
        return Tokens(tokens, time, tokenSet, TokenForm.Default, created: shown, status: StatusCodes.Status201Created);
    }

    private static RazorComponentResult<TokensPage> Tokens(TokenStore tokens, TimeProvider time, AntiforgeryTokenSet antiforgery, TokenForm form,
        CreatedJoinTokenDto? created = null, IReadOnlyDictionary<string, string[]>? errors = null, string? message = null, int status = StatusCodes.Status200OK) =>
        Component<TokensPage>(new()
        {
            [nameof(TokensPage.Tokens)] = tokens.List(),
            [nameof(TokensPage.Now)] = time.GetUtcNow(),
            [nameof(TokensPage.Antiforgery)] = antiforgery,
            [nameof(TokensPage.Form)] = form,
            [nameof(TokensPage.Created)] = created,
            [nameof(TokensPage.Errors)] = errors,
            [nameof(TokensPage.Message)] = message,
        }, status);

    // One key=value per line or comma, as the form says; syntax and limits are ProbeLabels'.
    private static Dictionary<string, string> ParseLabels(string text, Dictionary<string, string[]> errors)
    {
        if (!ProbeLabels.TryParse(text.Split(['\n', '\r', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), out var labels, out var error))
            errors["labels"] = [error!];
        return new Dictionary<string, string>(labels, StringComparer.Ordinal);
    }

    private static async Task<IResult> RevokeTokenAsync(string id, HttpContext context, IAntiforgery antiforgery, TokenStore tokens, EventStore events, ILoggerFactory loggers)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return Refused();
        if (!JoinToken.IsValidId(id) || !tokens.Revoke(id))
            return Message("Not found", $"No active join token {id}.", StatusCodes.Status404NotFound);
        var actor = "web:" + (context.User.Identity?.Name ?? "?");
        events.Append(ApiEventKinds.JoinTokenRevoked, null, ProbeCallContextExtensions.RemoteAddress(context), $"token {id} by {actor}");
        ApiLog.JoinTokenRevoked(loggers.CreateLogger("Survey6.Server.Web"), id, actor);
        return Results.Redirect($"/tokens?done={Uri.EscapeDataString($"token {id} revoked")}", preserveMethod: false);
    }

    private static async Task<IResult> DataAsync(HttpContext context, IAntiforgery antiforgery, WebData data)
    {
        var cancellationToken = context.RequestAborted;
        var (ingest, ingestError) = await data.IngestAsync(cancellationToken).ConfigureAwait(false);
        var ledger = context.RequestServices.GetService<IPipelineViewSource>();
        PipelineView? pipeline = null;
        try
        {
            pipeline = ledger?.Read();
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            // A ledger being created or migrated right now: show the page without it.
        }

        var lake = context.RequestServices.GetService<IDatasetSummarySource>();
        DatasetSummary? dataset = null;
        string? datasetError = null;
        if (lake is { } source)
        {
            try
            {
                dataset = await source.GetAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                datasetError = e.Message;
            }
        }

        var view = new DataView(data.Totals(), data.Uploads(null, 20), ingest, ingestError, ledger is not null, pipeline, lake is not null, dataset, datasetError, data.Now);
        return Component<DataPage>(new() { [nameof(DataPage.View)] = view, [nameof(DataPage.Tokens)] = antiforgery.GetAndStoreTokens(context) });
    }

    private static async Task FleetEventsAsync(HttpContext context, IProbeStateNotifier notifier, WebData data, ILoggerFactory loggers)
    {
        var cancellationToken = context.RequestAborted;
        using var feed = await notifier.SubscribeAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await using var renderer = new HtmlRenderer(context.RequestServices, loggers);
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        await context.Response.WriteAsync(": live\n\n", cancellationToken).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                using var keepAlive = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                keepAlive.CancelAfter(TimeSpan.FromSeconds(15));
                bool ready;
                try
                {
                    ready = await feed.Changes.WaitToReadAsync(keepAlive.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    await context.Response.WriteAsync(": keep-alive\n\n", cancellationToken).ConfigureAwait(false);
                    await context.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!ready)
                    return;
                // Coalesce a burst: one message per probe, with the state read now.
                var changed = new HashSet<string>(StringComparer.Ordinal);
                while (feed.Changes.TryRead(out var change))
                    changed.Add(change.ProbeId);
                var all = await data.FleetAsync(cancellationToken).ConfigureAwait(false);
                var counts = await RenderAsync<StateCounts>(renderer, new()
                {
                    [nameof(StateCounts.Counts)] = all.GroupBy(p => p.Health.State).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
                    [nameof(StateCounts.Total)] = all.Count,
                }).ConfigureAwait(false);
                var now = data.Now;
                var newest = data.NewestProbeVersion();
                foreach (var id in changed)
                {
                    var probe = all.FirstOrDefault(p => p.Id == id);
                    var row = probe is null ? "" : await RenderAsync<FleetRow>(renderer, new()
                    {
                        [nameof(FleetRow.Probe)] = probe, [nameof(FleetRow.Now)] = now, [nameof(FleetRow.NewestVersion)] = newest,
                    }).ConfigureAwait(false);
                    var message = JsonSerializer.Serialize(new FleetEvent(id, row, counts, probe?.Health.State ?? ""), EventJson);
                    await context.Response.WriteAsync($"event: probe\ndata: {message}\n\n", cancellationToken).ConfigureAwait(false);
                }

                await context.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The browser went away.
        }
    }

    /// <summary>A component's HTML alone, for a live update the page puts in place.</summary>
    private static Task<string> RenderAsync<TComponent>(HtmlRenderer renderer, Dictionary<string, object?> parameters)
        where TComponent : IComponent =>
        renderer.Dispatcher.InvokeAsync(async () =>
            (await renderer.RenderComponentAsync<TComponent>(ParameterView.FromDictionary(parameters)).ConfigureAwait(false)).ToHtmlString());

    private static RazorComponentResult<MessagePage> Refused() =>
        Message("Refused", "This form has expired or did not come from this site; reload the page and try again.", StatusCodes.Status400BadRequest);

    /// <summary>A page rendered from a Razor component, which encodes every value it writes.</summary>
    private static RazorComponentResult<TComponent> Component<TComponent>(Dictionary<string, object?> parameters, int status = StatusCodes.Status200OK)
        where TComponent : IComponent =>
        new RazorComponentResult<TComponent>(parameters) { StatusCode = status, ContentType = "text/html; charset=utf-8" };

    private static RazorComponentResult<LoginPage> Login(AntiforgeryTokenSet tokens, string? returnUrl, string? error, int status = StatusCodes.Status200OK) =>
        Component<LoginPage>(new() { [nameof(LoginPage.Tokens)] = tokens, [nameof(LoginPage.ReturnUrl)] = returnUrl, [nameof(LoginPage.Error)] = error }, status);

    private static RazorComponentResult<MessagePage> Message(string title, string text, int status) =>
        Component<MessagePage>(new() { [nameof(MessagePage.Title)] = title, [nameof(MessagePage.Text)] = text }, status);

    private static IResult Asset(string name)
    {
        var type = Path.GetExtension(name) switch
        {
            ".css" => "text/css; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".json" => "application/json",
            _ => null,
        };
        var stream = type is null ? null : Assembly.GetExecutingAssembly().GetManifestResourceStream("Survey6.Server.Web.Assets." + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, type);
    }

    private sealed record FleetEvent(string Id, string Row, string Counts, string State);

    private static partial class WebLog
    {
        [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Web UI: no admin password was set; created one for user '{User}' and wrote it to {Path} (owner-only). Read it there, or set your own with `survey6 server admin set-password`, which removes the file")]
        public static partial void AdminPasswordCreated(ILogger logger, string user, string path);
    }
}
