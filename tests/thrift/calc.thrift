// The test service of the Thrift proxy tests and benchmark (C++ peers: calc_server, calc_client;
// the Python test generates its own code from this file too).
namespace cpp calc

exception Oops { 1: string why }

service Calc {
  i32 add(1: i32 a, 2: i32 b),
  string echo(1: string s),
  oneway void note(1: string s),
  void fail(1: string why) throws (1: Oops oops),
  // Answers after `ms` milliseconds.
  i32 slow(1: i32 ms),
  // How many oneway notes this server has received, and client connections it has accepted.
  i32 notes(),
  i32 connections(),
}
