package web

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/report"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web/api"
)

// maxFeedBody bounds an uploaded feed or advisory file.
const maxFeedBody = 256 << 20

// IntelImport is the body of POST /api/v1/intel/feeds: the feed, and its
// content when the client uploads it (else the server fetches Feed.Source,
// an http(s) URL: the API never reads a path on the server; `vigil intel
// import --data` on the server host does).
type IntelImport struct {
	Feed    feeds.Feed `json:"feed"`
	Content string     `json:"content,omitempty"`
}

// VulnImport is the body of POST /api/v1/vuln/sources: where to fetch the
// advisories, VEX or SBOM from (an http(s) URL, never a path on the
// server), or their uploaded content, and how to take them.
type VulnImport struct {
	Name     string        `json:"name"`
	Format   string        `json:"format,omitempty"`
	Source   string        `json:"source,omitempty"`
	Content  string        `json:"content,omitempty"`
	Vendor   string        `json:"vendor,omitempty"`
	Model    string        `json:"model,omitempty"`
	Firmware string        `json:"firmware,omitempty"`
	Refresh  time.Duration `json:"refresh,omitempty"`
	Token    string        `json:"token,omitempty"`
	User     string        `json:"user,omitempty"`
	Password string        `json:"password,omitempty"`
}

// Intel is what the threat-intel and vulnerability routes serve.
type Intel struct {
	Catalog *catalog.Catalog
	Vuln    *scan.DB
	// UploadDir keeps uploaded intel feeds, so that refreshes find them.
	UploadDir string
}

// intelRoutes are the threat-intel and vulnerability routes: feeds (list:
// read; import and remove: write), findings (read) and the posture report
// (read).
func (s *Server) intelRoutes(in *Intel) []Route {
	cat, db, uploadDir := in.Catalog, in.Vuln, in.UploadDir
	p := api.Prefix
	return []Route{
		{Method: "GET", Pattern: p + "/intel/feeds", Perm: auth.PermRead, Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			fs := cat.List()
			for i := range fs {
				hideFeedSecrets(&fs[i])
			}
			writeJSON(w, http.StatusOK, api.List[catalog.FeedInfo]{Items: fs})
			return nil
		})},
		{Method: "POST", Pattern: p + "/intel/feeds", Perm: auth.PermWrite, Action: "intel.import", Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			var in IntelImport
			if err := decodeJSONLimit(w, r, &in, maxFeedBody); err != nil {
				return err
			}
			if in.Content != "" {
				path, err := saveUpload(uploadDir, in.Feed.Name, in.Content)
				if err != nil {
					return err
				}
				in.Feed.Source = path
			} else if err := checkRemote("feed.source", in.Feed.Source); err != nil {
				return err
			}
			res, err := cat.Import(r.Context(), in.Feed)
			if err != nil {
				return err
			}
			s.audit(r, "intel.import", "feed:"+in.Feed.Name, fmt.Sprintf("imported=%d rejected=%d", res.Imported, res.Rejected))
			writeJSON(w, http.StatusOK, res)
			return nil
		})},
		{Method: "DELETE", Pattern: p + "/intel/feeds/{name}", Perm: auth.PermWrite, Action: "intel.remove", Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			name := r.PathValue("name")
			if err := cat.Remove(r.Context(), name); err != nil {
				return err
			}
			s.audit(r, "intel.remove", "feed:"+name, "")
			w.WriteHeader(http.StatusNoContent)
			return nil
		})},
		{Method: "GET", Pattern: p + "/vuln/sources", Perm: auth.PermRead, Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			ss := db.Sources()
			for i := range ss {
				ss[i].Origin = egress.Redact(ss[i].Origin)
				ss[i].Result.Errors = nil // stored before rejections stopped quoting content
			}
			writeJSON(w, http.StatusOK, api.List[scan.SourceInfo]{Items: ss})
			return nil
		})},
		{Method: "POST", Pattern: p + "/vuln/sources", Perm: auth.PermWrite, Action: "vuln.import", Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			var in VulnImport
			if err := decodeJSONLimit(w, r, &in, maxFeedBody); err != nil {
				return err
			}
			o := scan.ImportOptions{Name: in.Name, Format: in.Format, Token: in.Token, User: in.User, Password: in.Password,
				Vendor: in.Vendor, Model: in.Model, Firmware: in.Firmware, Refresh: in.Refresh}
			var res feeds.Result
			var err error
			switch {
			case in.Content != "":
				res, err = db.ImportReader(bytes.NewReader([]byte(in.Content)), "upload:"+in.Name, o)
			case in.Source != "":
				if err = checkRemote("source", in.Source); err == nil {
					res, err = db.Import(r.Context(), in.Source, o)
				}
			default:
				err = vigil.Errorf(vigil.EINVALID, "source or content: one is required")
			}
			if err != nil {
				return err
			}
			s.audit(r, "vuln.import", "source:"+in.Name, fmt.Sprintf("imported=%d rejected=%d", res.Imported, res.Rejected))
			writeJSON(w, http.StatusOK, res)
			return nil
		})},
		{Method: "GET", Pattern: p + "/vuln/findings", Perm: auth.PermRead, Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			q := r.URL.Query()
			f := scan.Filter{DeviceID: q.Get("device"), KEVOnly: q.Get("kev") == "true"}
			if v := q.Get("min_cvss"); v != "" {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return vigil.Errorf(vigil.EINVALID, "min_cvss %q: want a number", v)
				}
				f.MinCVSS = n
			}
			writeJSON(w, http.StatusOK, api.List[vuln.Finding]{Items: db.Findings(f)})
			return nil
		})},
		{Method: "GET", Pattern: p + "/report/posture", Perm: auth.PermRead, Handler: s.handle(func(w http.ResponseWriter, r *http.Request) error {
			format := r.URL.Query().Get("format")
			if format == "" {
				format = "json"
			}
			types := map[string]string{"html": "text/html; charset=utf-8", "csv": "text/csv", "json": "application/json"}
			ct, ok := types[format]
			if !ok {
				return vigil.Errorf(vigil.EINVALID, "format %q: want html, csv or json", format)
			}
			rep, err := report.Posture(r.Context(), s.opts.Store, db, s.clock.Now())
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := report.Write(&b, format, rep); err != nil {
				return err
			}
			w.Header().Set("Content-Type", ct)
			_, err = w.Write(b.Bytes())
			return err
		})},
	}
}

// checkRemote refuses a source that is not an http(s) URL with a host: a
// path, file://, or any other scheme names something on the server itself,
// which only the CLI on the server host may read.
func checkRemote(field, src string) error {
	u, err := url.Parse(src)
	if src == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return vigil.Errorf(vigil.EINVALID, "%s: want an http(s) URL or uploaded content; files on the server are imported only on its host (vigil intel|vuln import --data)", field)
	}
	return nil
}

// hideFeedSecrets keeps a feed's credentials out of an answer: the token
// and password show as "set" when they are, the source URL loses its
// userinfo, and the stored rejections (which once quoted the content they
// could not parse) are left out; the counts stay.
func hideFeedSecrets(fi *catalog.FeedInfo) {
	if fi.Feed.Token != "" {
		fi.Feed.Token = "set"
	}
	if fi.Feed.Password != "" {
		fi.Feed.Password = "set"
	}
	fi.Feed.Source = egress.Redact(fi.Feed.Source)
	if !strings.HasPrefix(fi.Feed.Source, "http://") && !strings.HasPrefix(fi.Feed.Source, "https://") {
		// An upload or a file imported on the host: its path says
		// where the data dir is, which is none of a viewer's business.
		fi.Feed.Source = LocalSource
	}
	fi.Result.Errors = nil
}

// LocalSource is what the API shows as the source of a feed read from a
// file on the server (uploaded, or imported on the host with --data).
const LocalSource = "(uploaded or local file)"

// saveUpload writes an uploaded feed to dir/<name> (0600) and returns its
// path. The name must be a feed name the catalog accepts, so it cannot
// leave dir.
func saveUpload(dir, name, content string) (string, error) {
	if !catalog.ValidName(name) {
		return "", vigil.Errorf(vigil.EINVALID, "feed name %q: letters, digits, '.', '_' and '-' only", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot create upload dir: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("cannot save uploaded feed: %w", err)
	}
	return path, nil
}
