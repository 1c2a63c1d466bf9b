// Package attacks runs the memory attacks of issue 12 against the real server (`vaxpass
// serve --demo`, the binary a user runs, as a subprocess) and reads the server's peak
// resident memory (VmHWM in /proc/PID/status) around them: spreadsheets that inflate to a
// 100 MB cell or to 199,990 rows, and dozens of concurrent near-10 MB bodies to the public
// verification route and to the import route. Each attack must get its precise 4xx, the
// server's peak must stay under 256 MB (a limit of the acceptance, not a speed
// figure), and the server must still answer afterwards. Linux only (it reads /proc).
package attacks
