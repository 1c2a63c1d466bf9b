package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Demo names and sizes.
const (
	DemoFacility = "demo-site"
	demoDir      = "demo"
	demoPeople   = 2000
	demoUpload   = 400 // records in the sample upload
)

// Demo is what the demo set-up made: where its files are and the demo facility's key.
type Demo struct {
	APIKey string
	// Dir holds registry.csv, records.jsonl, truth.jsonl, doses.json (a ready upload
	// body) and lookup.json (a lookup body for a person the upload makes fully
	// vaccinated); it and its files are readable by their owner only.
	Dir string
}

// SetupDemo loads a generated registry and registers the demo facility, once: on a data
// directory that has them already it only reads the key back. The files are synthetic
// people, never real ones.
func (l *Local) SetupDemo(ctx context.Context, seed uint64) (Demo, error) {
	d := Demo{Dir: filepath.Join(l.opt.DataDir, demoDir)}
	keyFile := filepath.Join(d.Dir, "api-key.txt")
	if _, err := l.Store.GetFacility(ctx, DemoFacility); err == nil {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return d, fmt.Errorf("demo facility exists but its key file does not: %w", err)
		}
		d.APIKey = string(b)
		return d, nil
	} else if !errors.Is(err, vaxpass.ErrNotFound) {
		return d, err
	}

	if _, err := synth.WriteDir(ctx, d.Dir, synth.Config{People: demoPeople, Records: demoPeople, Seed: seed}, nil); err != nil {
		return d, fmt.Errorf("generate demo population: %w", err)
	}
	if err := l.loadRegistryFile(ctx, filepath.Join(d.Dir, synth.RegistryFile)); err != nil {
		return d, err
	}
	if err := writeDemoBodies(d.Dir); err != nil {
		return d, err
	}
	key, err := l.AddFacility(ctx, DemoFacility, "Demo vaccination site")
	if err != nil {
		return d, err
	}
	if err := writePrivate(keyFile, []byte(key)); err != nil {
		return d, err
	}
	d.APIKey = key
	return d, nil
}

func (l *Local) loadRegistryFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := registry.NewReader(f)
	if err != nil {
		return err
	}
	var readErr error
	people := func(yield func(match.Person) bool) {
		for p, err := range r.All() {
			if err != nil {
				readErr = err
				return
			}
			if !yield(p) {
				return
			}
		}
	}
	if _, err := l.DB.LoadRegistry(ctx, people); err != nil {
		return err
	}
	return readErr
}

// writeDemoBodies writes doses.json (the first records of the generated set, as one
// upload) and lookup.json (the details of a clean, fully vaccinated person among them).
func writeDemoBodies(dir string) error {
	recs, err := readJSONL[dose.Record](filepath.Join(dir, synth.RecordsFile), demoUpload)
	if err != nil {
		return err
	}
	truth, err := readJSONL[synth.Truth](filepath.Join(dir, synth.TruthFile), demoUpload)
	if err != nil {
		return err
	}
	byPerson := map[string][]int{}
	for i, t := range truth {
		if t.Class == synth.Clean {
			byPerson[t.RegistryID] = append(byPerson[t.RegistryID], i)
		}
	}
	var pick *dose.Record
	for i, t := range truth {
		idx, ok := byPerson[t.RegistryID]
		if !ok {
			continue
		}
		var ds []vaccine.Dose
		for _, j := range idx {
			ds = append(ds, vaccine.Dose{Vaccine: vaccine.Code(recs[j].Vaccine), DoseNumber: recs[j].DoseNumber, VaccinatedOn: recs[j].VaccinatedOn})
		}
		if a, err := vaccine.Assess(ds); err == nil && a.Eligible {
			pick = &recs[i]
			break
		}
	}
	if pick == nil {
		return errors.New("demo: no fully vaccinated clean person in the sample")
	}
	if err := writeJSON(filepath.Join(dir, "doses.json"), map[string]any{"records": recs}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "lookup.json"), lookup.Query{IDNumber: pick.IDNumber, FullName: pick.FullName, DOB: pick.DOB})
}

func readJSONL[T any](path string, max int) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < max {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, len(out)+1, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return writePrivate(path, append(b, '\n'))
}

// writePrivate writes a file only its owner can read, as synth.WriteDir does: the demo
// files hold (synthetic) personal data and the facility's key.
func writePrivate(path string, data []byte) error {
	f, err := synth.CreatePrivate(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
