package synth

import "github.com/vaxpass/vaxpass/shared/domain/vaccine"

// province is one province-of-birth-registration code of the CCCD with its population,
// which weights how often it is drawn.
type province struct {
	code       string
	population int // thousands
}

// provinces: the 63 codes of Circular 07/2016/TT-BCA Appendix I (the project's reference
// list vn/provinces.json, also embedded in shared/domain/identity; a test keeps them in step),
// weighted by the 2019 Population and Housing Census (GSO, "Completed results of the 2019
// Viet Nam population and housing census", population by province, 1 April 2019, rounded to
// thousands). People register births where they are born, so the census population is a
// fair stand-in for the share of IDs issued per code.
var provinces = [...]province{
	{"001", 8054}, {"002", 855}, {"004", 531}, {"006", 314}, {"008", 785}, {"010", 731},
	{"011", 599}, {"012", 461}, {"014", 1249}, {"015", 822}, {"017", 855}, {"019", 1287},
	{"020", 782}, {"022", 1321}, {"024", 1804}, {"025", 1464}, {"026", 1152}, {"027", 1369},
	{"030", 1893}, {"031", 2029}, {"033", 1253}, {"034", 1861}, {"035", 853}, {"036", 1781},
	{"037", 983}, {"038", 3641}, {"040", 3328}, {"042", 1289}, {"044", 896}, {"045", 633},
	{"046", 1129}, {"048", 1135}, {"049", 1496}, {"051", 1232}, {"052", 1487}, {"054", 873},
	{"056", 1232}, {"058", 591}, {"060", 1231}, {"062", 541}, {"064", 1514}, {"066", 1870},
	{"067", 623}, {"068", 1297}, {"070", 995}, {"072", 1170}, {"074", 2427}, {"075", 3097},
	{"077", 1149}, {"079", 8993}, {"080", 1689}, {"082", 1765}, {"083", 1289}, {"084", 1010},
	{"086", 1023}, {"087", 1600}, {"089", 1909}, {"091", 1724}, {"092", 1236}, {"093", 734},
	{"094", 1200}, {"095", 908}, {"096", 1194},
}

// migrationPull multiplies the weight of the provinces people move to when they live away
// from where their birth was registered (the big cities and industrial provinces).
var migrationPull = map[string]int{"079": 4, "001": 3, "074": 4, "075": 3, "048": 2, "031": 2, "027": 2}

// Share of people living outside their province of birth registration (2019 census: about
// 7% moved between provinces in the five years before; lifetime migration is higher).
const movedAway = 0.15

// peoplePerCommune sizes the synthetic communes: Viet Nam had about 10,600 communes and
// wards for 96 million people (GSO 2019), some 9,000 people each.
const peoplePerCommune = 9 // thousands

// weighted is an entry of a weighted table.
type weighted struct {
	value  string
	weight float64
}

// familyNames with their share of the population in percent. Source: Wikipedia, "Vietnamese
// name", section "Family name": Nguyễn 38.4, Trần 11, Lê 9.5, Phạm 7.1, Huỳnh/Hoàng 5.1,
// Phan 4.5, Vũ/Võ 3.9, Đặng 2.1, Bùi 2, Đỗ 1.4, Hồ 1.3, Ngô 1.3, Dương 1, Lý 0.5 ("these 14
// names account for 90% of the people"), followed by a list of less common names. The pairs
// Hoàng/Huỳnh and Vũ/Võ are one name, written the southern way in the south; they are split
// here by a rough north/south share. The remaining ~11% is spread over the less common names.
var familyNames = []weighted{
	{"Nguyễn", 38.4}, {"Trần", 11.0}, {"Lê", 9.5}, {"Phạm", 7.1},
	{"Hoàng", 3.0}, {"Huỳnh", 2.1}, {"Phan", 4.5}, {"Vũ", 2.0}, {"Võ", 1.9},
	{"Đặng", 2.1}, {"Bùi", 2.0}, {"Đỗ", 1.4}, {"Hồ", 1.3}, {"Ngô", 1.3}, {"Dương", 1.0}, {"Lý", 0.5},
	{"Đào", 0.6}, {"Đoàn", 0.6}, {"Đinh", 0.6}, {"Trương", 0.6}, {"Trịnh", 0.5}, {"Lâm", 0.5},
	{"Mai", 0.5}, {"Phùng", 0.4}, {"Tô", 0.4}, {"Hà", 0.5}, {"Tạ", 0.3}, {"Cao", 0.5},
	{"Lương", 0.5}, {"Châu", 0.3}, {"Lưu", 0.4}, {"Quách", 0.2}, {"Kiều", 0.2}, {"Thái", 0.3},
	{"Triệu", 0.3}, {"Vương", 0.3}, {"Tăng", 0.2}, {"La", 0.2}, {"Văn", 0.2}, {"Chu", 0.3},
	{"Hứa", 0.2}, {"Lục", 0.1}, {"Nông", 0.3}, {"Tôn", 0.1},
}

// Middle names: "Văn" for men and "Thị" for women dominate among people born before the
// 1980s and are still frequent later; the others are the common modern middle names.
var (
	maleMiddle = []weighted{
		{"Văn", 30}, {"Hữu", 5}, {"Đức", 6}, {"Minh", 7}, {"Quang", 5}, {"Công", 4}, {"Thành", 3},
		{"Xuân", 3}, {"Ngọc", 3}, {"Thanh", 4}, {"Hoàng", 3}, {"Quốc", 4}, {"Gia", 3}, {"Anh", 3},
		{"Tuấn", 2}, {"Đình", 4}, {"Trọng", 3}, {"Bá", 2}, {"Duy", 3}, {"Hải", 2}, {"Tấn", 2},
	}
	femaleMiddle = []weighted{
		{"Thị", 38}, {"Ngọc", 7}, {"Thanh", 5}, {"Thu", 5}, {"Hồng", 4}, {"Minh", 3}, {"Kim", 4},
		{"Phương", 3}, {"Bảo", 3}, {"Thùy", 3}, {"Mai", 2}, {"Khánh", 2}, {"Diệu", 1}, {"Hoài", 2},
		{"Mỹ", 3}, {"Bích", 2}, {"Tuyết", 1}, {"Quỳnh", 2}, {"Lan", 1}, {"Hà", 1},
	}
	// Second middle names of four-word names ("Nguyễn Thị Thu Hà", "Trần Văn Minh Khoa").
	maleSecond   = []string{"Minh", "Quang", "Đức", "Hoàng", "Anh", "Thanh", "Hữu", "Bảo", "Gia", "Nhật"}
	femaleSecond = []string{"Thu", "Ngọc", "Thanh", "Kim", "Hồng", "Minh", "Bảo", "Phương", "Mai", "Diễm"}
)

// Given names, equally likely within a gender.
var (
	maleGiven = []string{
		"An", "Anh", "Bảo", "Bình", "Cường", "Chiến", "Công", "Dũng", "Duy", "Dương", "Đạt", "Đông",
		"Đức", "Giang", "Hải", "Hào", "Hậu", "Hiếu", "Hòa", "Hoàng", "Hùng", "Huy", "Hưng", "Khang",
		"Khánh", "Khoa", "Kiên", "Lâm", "Lộc", "Long", "Luân", "Mạnh", "Minh", "Nam", "Nghĩa",
		"Nhân", "Phát", "Phong", "Phúc", "Phước", "Quang", "Quân", "Quý", "Sang", "Sơn", "Tài",
		"Tân", "Thái", "Thắng", "Thành", "Thiện", "Thịnh", "Thông", "Tiến", "Toàn", "Trí", "Trung",
		"Tú", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ", "Khôi", "Nguyên", "Hiệp", "Lợi", "Tâm",
	}
	femaleGiven = []string{
		"An", "Anh", "Bích", "Châu", "Chi", "Diễm", "Dung", "Duyên", "Giang", "Hà", "Hạnh", "Hằng",
		"Hiền", "Hoa", "Hồng", "Huệ", "Hương", "Huyền", "Lan", "Liên", "Linh", "Loan", "Ly", "Mai",
		"My", "Nga", "Ngân", "Ngọc", "Nhung", "Nhi", "Oanh", "Phương", "Quyên", "Quỳnh", "Tâm",
		"Thảo", "Thanh", "Thắm", "Thu", "Thủy", "Thư", "Trâm", "Trang", "Trinh", "Tuyết", "Uyên",
		"Vân", "Vy", "Xuân", "Yến", "Hậu", "Lụa", "Tươi", "Nhàn",
	}
)

// Share of four-word names (two middle names).
const twoMiddleNames = 0.15

// ageBands: the population aged 12-95 in 2022 by age, shaped after the 2019 census pyramid
// (GSO, percent of the population per five-year band, shifted three years). weight is per
// band; ages are uniform within a band.
var ageBands = []struct {
	from, to int // inclusive
	weight   float64
}{
	{12, 14, 4.8}, {15, 19, 6.9}, {20, 24, 7.0}, {25, 29, 8.0}, {30, 34, 8.2}, {35, 39, 7.9},
	{40, 44, 7.3}, {45, 49, 6.5}, {50, 54, 6.0}, {55, 59, 5.2}, {60, 64, 4.3}, {65, 69, 3.2},
	{70, 74, 2.0}, {75, 79, 1.2}, {80, 84, 0.9}, {85, 89, 0.6}, {90, 95, 0.3},
}

// refYear is the year ages refer to: the passport programme ran in 2022.
const refYear = 2022

// Vaccination campaign. Dates are day numbers since 1970-01-01 (UTC).
var (
	campaignStart = civilDay(2021, 3, 1)
	campaignEnd   = civilDay(2022, 6, 30)
	// minorsFrom: Viet Nam began vaccinating 12-17 year olds (Pfizer) in October 2021.
	minorsFrom = civilDay(2021, 10, 15)
	// boostersFrom: third doses began in November 2021.
	boostersFrom = civilDay(2021, 11, 20)
)

// firstDoseMonths weights the month of a person's first dose, March 2021 to June 2022:
// a slow start, the mass campaign of August-November 2021, a long tail.
var firstDoseMonths = [16]float64{0.3, 0.5, 0.7, 1.5, 4, 12, 22, 20, 16, 10, 6, 3, 2, 1.2, 0.5, 0.3}

// primaryVaccine describes how a vaccine is drawn for a first dose.
type primaryVaccine struct {
	code      vaccine.Code
	weight    float64 // share of first doses, adults
	available int     // first day it was given in Viet Nam (approximate)
	// Days between primary-course doses: from minGap to minGap+spread.
	minGap, spread int
	lot            string
}

// primaries: approximate shares of Viet Nam's 2021-22 supply (AstraZeneca via COVAX and
// purchase, Sinopharm donations and purchase, Pfizer, Moderna, Abdala from Cuba, smaller
// Sputnik V, Hayat-Vax and Janssen deliveries) and the recommended intervals.
var primaries = []primaryVaccine{
	{vaccine.AstraZeneca, 30, civilDay(2021, 3, 8), 56, 28, "ABV"},
	{vaccine.VeroCell, 28, civilDay(2021, 6, 20), 21, 14, "202107"},
	{vaccine.Pfizer, 22, civilDay(2021, 7, 7), 21, 35, "FF"},
	{vaccine.Moderna, 9, civilDay(2021, 7, 10), 28, 14, "0"},
	{vaccine.Abdala, 5, civilDay(2021, 9, 22), 14, 7, "C"},
	{vaccine.SputnikV, 2, civilDay(2021, 7, 15), 21, 7, "I"},
	{vaccine.HayatVax, 2, civilDay(2021, 10, 5), 21, 7, "HV"},
	{vaccine.Janssen, 2, civilDay(2021, 8, 10), 0, 0, "XD"},
}

// boosterVaccines: third and fourth doses were mostly mRNA or AstraZeneca.
var boosterVaccines = []weighted{{string(vaccine.Pfizer), 45}, {string(vaccine.Moderna), 25}, {string(vaccine.AstraZeneca), 30}}

// dosesWanted weights how many doses a vaccinated person has received (1 to 4).
var dosesWanted = [4]float64{8, 37, 45, 10}

// mixedSecondDose: share of two-dose courses finished with Pfizer (Viet Nam mixed
// AstraZeneca then Pfizer when supply ran short).
const mixedSecondDose = 0.05

// hasPhone: share of records carrying a phone number.
const hasPhone = 0.75

// mobilePrefixes of Vietnamese 10-digit mobile numbers (after the 2018 renumbering).
var mobilePrefixes = []string{
	"032", "033", "034", "035", "036", "037", "038", "039", "052", "056", "058", "059", "070",
	"076", "077", "078", "079", "081", "082", "083", "084", "085", "086", "088", "089", "090",
	"091", "093", "094", "096", "097", "098", "099",
}
