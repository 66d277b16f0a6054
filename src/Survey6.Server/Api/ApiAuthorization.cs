using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Api;

/// <summary>
/// Builds <see cref="ApiAuthentication.Policy"/>: an authenticated user from the bearer scheme, or
/// from the cookie scheme if one was registered by the time options are first read. This is the hook
/// for the web UI: <c>AddAuthentication().AddCookie()</c> is all it takes for a logged-in user to
/// call the API too.
/// </summary>
internal sealed class ApiPolicySetup(IOptions<AuthenticationOptions> authentication) : IConfigureOptions<AuthorizationOptions>
{
    public void Configure(AuthorizationOptions options)
    {
        var schemes = new List<string> { ApiAuthentication.Scheme };
        if (authentication.Value.SchemeMap.ContainsKey(ApiAuthentication.CookieScheme))
            schemes.Add(ApiAuthentication.CookieScheme);
        options.AddPolicy(ApiAuthentication.Policy, policy => policy.AddAuthenticationSchemes([.. schemes]).RequireAuthenticatedUser());
    }
}

/// <summary>Marks endpoints whose authorization failures are answered with Problem Details rather than a scheme's challenge.</summary>
public sealed class ApiEndpointMetadata
{
    public static readonly ApiEndpointMetadata Instance = new();

    private ApiEndpointMetadata()
    {
    }
}

/// <summary>
/// Answers refused API calls with 401/403 Problem Details and <c>WWW-Authenticate: Bearer</c>,
/// instead of letting every scheme of the policy challenge (a cookie scheme would redirect to a
/// login page, which a script cannot follow). Counts and records refusals; other endpoints get
/// the default behaviour.
/// </summary>
internal sealed class ApiAuthorizationResultHandler(
    ServerCounters counters,
    RefusalEventThrottle throttle,
    EventStore events,
    ILogger<ApiAuthorizationResultHandler> logger) : IAuthorizationMiddlewareResultHandler
{
    public const string RefusedCounterPrefix = "api.refused.";

    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        var isApi = context.GetEndpoint()?.Metadata.GetMetadata<ApiEndpointMetadata>() is not null;
        if (authorizeResult.Succeeded && isApi && NeedsAntiforgery(context) && !await HasAntiforgeryAsync(context).ConfigureAwait(false))
        {
            counters.Increment(RefusedCounterPrefix + "csrf");
            var remote = ProbeCallContextExtensions.RemoteAddress(context);
            if (throttle.ShouldRecord(remote, "api:csrf"))
            {
                ApiLog.Refused(logger, context.Request.Path, remote, "csrf");
                events.Append(ApiEventKinds.ApiRefused, null, remote, $"{context.Request.Method} {context.Request.Path}: cookie session without antiforgery token");
            }

            await ApiProblems.Write(context, StatusCodes.Status403Forbidden,
                $"a write with the web session cookie needs the antiforgery token of a web UI page in the {ApiAuthentication.AntiforgeryHeader} header; scripts use a bearer API token")
                .ConfigureAwait(false);
            return;
        }

        if (authorizeResult.Succeeded || !isApi)
        {
            await _default.HandleAsync(next, context, policy, authorizeResult).ConfigureAwait(false);
            return;
        }

        await RefuseAsync(context, authorizeResult).ConfigureAwait(false);
    }

    /// <summary>
    /// An unsafe method authenticated by the session cookie alone. A browser sends the cookie with requests other
    /// sites make (another port or a sibling subdomain is the same site for SameSite), so such a write must prove
    /// it came from a page of ours. A bearer token is never sent by a browser on its own, so it proves that already.
    /// </summary>
    private static bool NeedsAntiforgery(HttpContext context)
    {
        var method = context.Request.Method;
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method))
            return false;
        return !context.User.Identities.Any(i => i.IsAuthenticated && i.AuthenticationType == ApiAuthentication.Scheme);
    }

    private static async Task<bool> HasAntiforgeryAsync(HttpContext context)
    {
        // Only the header counts here: a form field could come from a cross-site form post.
        if (string.IsNullOrEmpty(context.Request.Headers[ApiAuthentication.AntiforgeryHeader]))
            return false;
        var antiforgery = context.RequestServices.GetService<IAntiforgery>();
        return antiforgery is not null && await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false);
    }

    private Task RefuseAsync(HttpContext context, PolicyAuthorizationResult authorizeResult)
    {

        if (authorizeResult.Forbidden)
            return ApiProblems.Write(context, StatusCodes.Status403Forbidden, "this caller may not use this endpoint");

        var refusal = context.Items.TryGetValue(ApiAuthentication.RefusalItem, out var item) && item is ApiTokenRefusal r ? r : ApiTokenRefusal.Missing;
        counters.Increment(RefusedCounterPrefix + refusal.Name());
        var challenge = "Bearer realm=\"survey6\"";
        if (refusal != ApiTokenRefusal.Missing)
        {
            challenge += $", error=\"invalid_token\", error_description=\"{refusal.Message()}\"";
            // A missing token is a browser or a misconfigured scraper: counted, not recorded.
            var remote = ProbeCallContextExtensions.RemoteAddress(context);
            if (throttle.ShouldRecord(remote, "api:" + refusal.Name()))
            {
                ApiLog.Refused(logger, context.Request.Path, remote, refusal.Name());
                events.Append(ApiEventKinds.ApiRefused, null, remote, $"{context.Request.Method} {context.Request.Path}: token {refusal.Name()}");
            }
        }

        context.Response.Headers[HeaderNames.WWWAuthenticate] = challenge;
        return ApiProblems.Write(context, StatusCodes.Status401Unauthorized, refusal.Message());
    }
}
