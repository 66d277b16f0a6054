using Survey6.Cli;

return await RootCommandFactory.Create().Parse(args).InvokeAsync().ConfigureAwait(false);
