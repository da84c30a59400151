# Checks that the output a README example shows (file 1) appears in what the command printed
# (file 2). The shown lines form groups separated by lines that are just "..."; each group must
# appear as consecutive lines, the groups in order. Within a line, runs of blanks are one blank,
# "..." matches any text, a number followed by "..." matches a number that starts with its digits,
# and any other number matches a number within 0.1% or one unit in its last decimal (so a figure
# that differs in the last digit between SIMD targets still matches, a stale one does not). Blank
# lines are ignored on both sides. On a mismatch it prints the first group not found and exits 1.
function squeeze(s) { gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
function near(x, y,   dot, ulp, tol) {
  dot = index(x, ".")
  if (dot == 0 || x ~ /[eE]/) return x + 0 == y + 0 || (x + 0 != 0 && (x - y) / x < 1e-3 && (y - x) / x < 1e-3)
  ulp = 10 ^ -(length(x) - dot)
  tol = 1e-3 * (x < 0 ? -x : x)
  if (ulp > tol) tol = ulp
  return (x - y <= tol + 1e-12) && (y - x <= tol + 1e-12)
}
function same(e, a,   i, ne, na, num) {
  num = "^[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?"
  while (1) {
    if (e == "") return a == ""
    if (substr(e, 1, 3) == "...") {
      e = substr(e, 4)
      for (i = 1; i <= length(a) + 1; i++) if (same(e, substr(a, i))) return 1
      return 0
    }
    if (match(e, num)) {
      ne = substr(e, 1, RLENGTH); e = substr(e, RLENGTH + 1)
      if (!match(a, num)) return 0
      na = substr(a, 1, RLENGTH); a = substr(a, RLENGTH + 1)
      # "0.98..." asks only for the digits shown: the printed number must start with them.
      if (substr(e, 1, 3) == "...") { if (substr(na, 1, length(ne)) != ne) return 0; continue }
      if (!near(ne, na)) return 0
      continue
    }
    if (substr(e, 1, 1) != substr(a, 1, 1)) return 0
    e = substr(e, 2); a = substr(a, 2)
  }
}
# Blank lines separate nothing that matters here (server-sent events, report paragraphs).
FILENAME == ARGV[1] { if (squeeze($0) != "") shown[++n_shown] = squeeze($0); next }
squeeze($0) != "" { printed[++n_printed] = squeeze($0) }
END {
  at = 1; i = 1
  while (i <= n_shown) {
    if (shown[i] == "...") { i++; continue }
    len = 0; while (i + len <= n_shown && shown[i + len] != "...") len++
    found = 0
    for (p = at; p + len - 1 <= n_printed && !found; p++) {
      ok = 1
      for (k = 0; k < len && ok; k++) ok = same(shown[i + k], printed[p + k])
      if (ok) { found = 1; at = p + len }
    }
    if (!found) {
      print "  the README shows these lines, which the command did not print (in this order):"
      for (k = 0; k < len; k++) print "    | " shown[i + k]
      exit 1
    }
    i += len
  }
}
