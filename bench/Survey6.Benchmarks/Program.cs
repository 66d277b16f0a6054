using BenchmarkDotNet.Running;

// Every public benchmark class in this assembly is found here; pick with --filter, e.g.
//   dotnet run -c Release --project bench/Survey6.Benchmarks -- --filter '*Ipv6Address*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
