using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Survey6.Server.Api;

/// <summary>RFC 9457 Problem Details for API errors.</summary>
internal static class ApiProblems
{
    public static ProblemHttpResult Problem(int status, string detail) => TypedResults.Problem(detail: detail, statusCode: status);

    public static ProblemHttpResult NotFound(string what) => Problem(StatusCodes.Status404NotFound, what);

    public static ProblemHttpResult BadRequest(string detail) => Problem(StatusCodes.Status400BadRequest, detail);

    public static Task Write(HttpContext context, int status, string detail) => Problem(status, detail).ExecuteAsync(context);
}
