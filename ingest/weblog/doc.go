// Package weblog converts web server and reverse proxy access logs into
// Vigil events of kind web: the NCSA common and combined formats that
// nginx and Apache httpd write by default (nginx `combined`, Apache
// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`), and JSON
// lines with nginx's variable names. The fields are ECS's, which the
// Sigma mapping gives the webserver taxonomy (cs-uri-stem, cs-uri-query,
// cs-user-agent, sc-status, ...), so the SigmaHQ and Vigil web rules
// apply to them.
//
// This package parses lines it is given: it does not open files, publish
// or talk to any other stage.
package weblog
