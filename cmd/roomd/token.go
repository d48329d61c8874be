package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/server/auth"
)

// runToken is `roomd token`: it mints an HS256 token for a user.
func runToken(args []string, stdout io.Writer) error {
	var (
		given    []config.FlagValue
		sub      string
		rooms    listFlag
		ttl      time.Duration
		info     string
		secret   string
		issuer   string
		audience string
	)
	fs := flag.NewFlagSet("roomd token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(config.ConfigFlag(&given), "config", "")
	fs.StringVar(&sub, "sub", "", "")
	fs.Var(&rooms, "room", "")
	fs.DurationVar(&ttl, "ttl", time.Hour, "")
	fs.StringVar(&info, "info", "", "")
	fs.StringVar(&secret, "secret", "", "")
	fs.StringVar(&issuer, "issuer", "", "")
	fs.StringVar(&audience, "audience", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, tokenUsage)
			return nil
		}
		return usageError("token", err)
	}
	if fs.NArg() > 0 {
		return usageError("token", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if sub == "" {
		return usageError("token", errors.New("--sub is required"))
	}
	if ttl < 0 {
		return usageError("token", fmt.Errorf("--ttl must not be negative, got %s", ttl))
	}
	grants := make([]auth.Grant, 0, len(rooms))
	for _, r := range rooms {
		g, err := auth.ParseGrant(r)
		if err != nil {
			return fmt.Errorf("--room: %w", err)
		}
		grants = append(grants, g)
	}
	var infoClaim any
	if info != "" {
		if !json.Valid([]byte(info)) {
			return errors.New("--info: not valid JSON")
		}
		infoClaim = json.RawMessage(info)
	}

	// Without --secret, sign with the node's first secret (and its issuer
	// and audience), from the config file and ROOMD_* variables.
	if secret == "" || issuer == "" || audience == "" {
		cfg, err := config.Load(config.Sources{File: config.File(given, config.OSEnv), Env: config.OSEnv})
		if err != nil {
			return err
		}
		if secret == "" {
			if len(cfg.Auth.JWTSecrets) == 0 {
				return errors.New("no JWT secret: give --secret, or configure one (auth.jwt_secrets, ROOMD_JWT_SECRET)")
			}
			secret = cfg.Auth.JWTSecrets[0]
		}
		if issuer == "" {
			issuer = cfg.Auth.Issuer
		}
		if audience == "" {
			audience = cfg.Auth.Audience
		}
	}
	tok, err := auth.Mint([]byte(secret), sub, grants, infoClaim, ttl)
	if err != nil {
		return err
	}
	if tok, err = withIssuer(tok, []byte(secret), issuer, audience); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// withIssuer adds "iss" and "aud" to a token auth.Mint made, and signs it
// again: a node that checks them refuses a token without them, and Mint
// does not set them.
func withIssuer(tok string, secret []byte, issuer, audience string) (string, error) {
	if issuer == "" && audience == "" {
		return tok, nil
	}
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if issuer != "" {
		c["iss"] = issuer
	}
	if audience != "" {
		c["aud"] = audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

const tokenUsage = `Usage: roomd token --sub USER [--room PATTERN=PERMS]... [flags]

Prints an HS256 token for USER, signed with --secret or else with the first
JWT secret of the configuration (--config FILE, ROOMD_CONFIG, ROOMD_JWT_SECRET).

  --sub USER        the user id ("sub" claim); required
  --room GRANT      a room pattern and its permissions, e.g. 'chat:*=join,pub,pres';
                    repeatable; permissions: join, pub, pres, state, observe
  --ttl DURATION    lifetime (default 1h; 0: never expires)
  --info JSON       the "info" claim, shown in presence, e.g. '{"name":"Alice"}'
  --secret SECRET   the HS256 secret (prefer ROOMD_JWT_SECRET: flags show in ps)
  --issuer ISS      the "iss" claim (default: auth.issuer of the configuration)
  --audience AUD    the "aud" claim (default: auth.audience of the configuration)
  --config FILE     configuration file to read the secret, issuer and audience from

Example:
  roomd token --sub alice --room 'chat:*=join,pub,pres' --ttl 1h --info '{"name":"Alice"}'
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return fmt.Sprint([]string(*l)) }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
