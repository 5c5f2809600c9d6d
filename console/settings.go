package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web/api"
)

type settingsData struct {
	Users   []UserView
	Tokens  []auth.Token
	Enroll  []enrollToken
	Created *createdSecret // a secret made by this request, shown once
	Roles   []auth.Role
}

type enrollToken struct {
	ID      string    `json:"id"`
	Class   string    `json:"class"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used"`
	UsedBy  string    `json:"used_by"`
}

type createdSecret struct{ What, Secret string }

func (c *Console) settings(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.settingsPage(w, r, s, nil)
}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, s *session, created *createdSecret) error {
	d := settingsData{Created: created, Roles: []auth.Role{auth.RoleViewer, auth.RoleAnalyst, auth.RoleAdmin, auth.RoleAgent}}
	var users api.List[UserView]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/users", nil, &users); err != nil {
		return err
	}
	d.Users = users.Items
	var toks api.List[auth.Token]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/tokens", nil, &toks); err != nil {
		return err
	}
	d.Tokens = toks.Items
	var en struct {
		Tokens []enrollToken `json:"tokens"`
	}
	if err := c.callAPI(r, s, "GET", api.Prefix+"/enroll-tokens", nil, &en); err != nil && vigil.ErrorCode(err) != vigil.ENOTFOUND {
		return err
	}
	d.Enroll = en.Tokens
	if created != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	return c.page(w, r, s, "settings", "Settings", "settings", d)
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *session) error {
	req := UserRequest{Name: r.PostFormValue("name"), Role: auth.Role(r.PostFormValue("role")), Password: r.PostFormValue("password")}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/users", req, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?done=user", http.StatusSeeOther)
	return nil
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.callAPI(r, s, "DELETE", api.Prefix+"/users/"+url.PathEscape(r.PathValue("name")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?done=userdel", http.StatusSeeOther)
	return nil
}

// createToken makes an API token and shows its secret once, on the page
// the POST answers (never in a redirect URL).
func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s *session) error {
	req := api.CreateTokenRequest{Name: r.PostFormValue("name"), Role: auth.Role(r.PostFormValue("role")), TTL: r.PostFormValue("ttl")}
	var out api.CreatedToken
	if err := c.callAPI(r, s, "POST", api.Prefix+"/tokens", req, &out); err != nil {
		return err
	}
	return c.settingsPage(w, r, s, &createdSecret{What: "API token " + out.Token.Name + " (" + string(out.Token.Role) + ")", Secret: out.Secret})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.callAPI(r, s, "DELETE", api.Prefix+"/tokens/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?done=token", http.StatusSeeOther)
	return nil
}

func (c *Console) createEnroll(w http.ResponseWriter, r *http.Request, s *session) error {
	req := map[string]string{"class": r.PostFormValue("class"), "ttl": r.PostFormValue("ttl")}
	var out struct {
		Token   string    `json:"token"`
		Class   string    `json:"class"`
		Expires time.Time `json:"expires"`
	}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/enroll-tokens", req, &out); err != nil {
		return err
	}
	return c.settingsPage(w, r, s, &createdSecret{What: "enrollment token, class " + out.Class + ", expires " + fmtTime(out.Expires), Secret: out.Token})
}

func (c *Console) deleteEnroll(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.callAPI(r, s, "DELETE", api.Prefix+"/enroll-tokens/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?done=enroll", http.StatusSeeOther)
	return nil
}
